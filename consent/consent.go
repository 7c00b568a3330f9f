// Package consent holds the rules of the national consent register: how a
// node decides, from its own replica of the register, whether a woman's
// data may be used for a purpose (failing closed for secondary use when the
// replica is stale), and how her choices are published as FHIR R4 Consent
// resources.
package consent

import (
	"context"
	"fmt"
	"time"

	"github.com/bildrum/bildrum"
)

// DefaultMaxAge is how old a node's replica may grow before the node
// refuses secondary use.
const DefaultMaxAge = 10 * time.Minute

// Checker decides at a node, from its replica of the consent register.
type Checker struct {
	Replica bildrum.ConsentReplica
	Region  string
	// MaxAge bounds the replica's age for secondary use (default DefaultMaxAge).
	MaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Decision is the answer for one woman and purpose, with the register
// version it was made at, which every answer for secondary use names.
type Decision struct {
	Allowed        bool   `json:"allowed"`
	Reason         string `json:"reason,omitempty"`
	ConsentVersion int64  `json:"consent_version"`
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) maxAge() time.Duration {
	if c.MaxAge > 0 {
		return c.MaxAge
	}
	return DefaultMaxAge
}

// Fresh returns the replica's state when it may be used for purpose: care
// is never blocked by a stale replica (a woman's blocks are applied as last
// known), every secondary purpose needs a replica confirmed within MaxAge,
// else an EUNAVAILABLE error says how old it is.
func (c *Checker) Fresh(ctx context.Context, purpose bildrum.Purpose) (bildrum.ReplicaState, error) {
	st, err := c.Replica.ReplicaState(ctx)
	if err != nil {
		return st, fmt.Errorf("consent replica: %w", err)
	}
	if !purpose.Secondary() {
		return st, nil
	}
	if st.SyncedAt.IsZero() {
		return st, bildrum.Errorf(bildrum.EUNAVAILABLE, "region %s's copy of the consent register has never been synchronised with the hub, so it cannot tell who opted out of %s: secondary use is refused until it is", c.Region, purpose)
	}
	if age := c.now().Sub(st.SyncedAt); age > c.maxAge() {
		return st, bildrum.Errorf(bildrum.EUNAVAILABLE, "region %s's copy of the consent register was last confirmed %s ago (the bound is %s), so it may miss opt-outs: secondary use is refused until the hub reaches the node again",
			c.Region, age.Round(time.Second), c.maxAge())
	}
	return st, nil
}

// Allows decides whether a woman's data at this node may be used for
// purpose. For secondary use a stale replica is an error, never a yes.
func (c *Checker) Allows(ctx context.Context, person bildrum.PersonID, purpose bildrum.Purpose) (Decision, error) {
	st, err := c.Fresh(ctx, purpose)
	if err != nil {
		return Decision{}, err
	}
	rec, err := c.Replica.ReplicaConsent(ctx, person)
	if err != nil {
		return Decision{}, fmt.Errorf("consent of %s: %w", "a woman", err)
	}
	ok, why := rec.Choices.Allows(purpose, c.Region)
	return Decision{Allowed: ok, Reason: why, ConsentVersion: st.Version}, nil
}
