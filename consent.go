package bildrum

import (
	"context"
	"slices"
	"time"
)

// AllRegions in a care block means sharing with every region is blocked.
const AllRegions = "all"

// TrialContact is a woman's opt-in to be contacted about clinical trials,
// with the contact details she chose to give.
type TrialContact struct {
	OptIn bool   `json:"opt_in"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// ConsentChoices are a woman's choices about her data: the secondary
// purposes she opted out of, her trial-contact opt-in, and the regions her
// care data may not be shared with (AllRegions for every region).
type ConsentChoices struct {
	OptOuts      []Purpose    `json:"opt_outs"`
	TrialContact TrialContact `json:"trial_contact"`
	CareBlocks   []string     `json:"care_blocks"`
}

// Check validates the choices and returns them normalised (sorted, no
// duplicates, contact details dropped without an opt-in).
func (c ConsentChoices) Check() (ConsentChoices, error) {
	out := ConsentChoices{TrialContact: c.TrialContact, OptOuts: []Purpose{}, CareBlocks: []string{}}
	for _, p := range c.OptOuts {
		if _, err := ParsePurpose(string(p)); err != nil {
			return ConsentChoices{}, err
		}
		if p == PurposeCare {
			return ConsentChoices{}, Errorf(EINVALID, "care is not a secondary purpose: to limit sharing for care, use care_blocks")
		}
		if p == PurposeRecruitment {
			return ConsentChoices{}, Errorf(EINVALID, "trial contact is opt-in: set trial_contact.opt_in to false instead of opting out of recruitment")
		}
		if !slices.Contains(out.OptOuts, p) {
			out.OptOuts = append(out.OptOuts, p)
		}
	}
	for _, r := range c.CareBlocks {
		if r != AllRegions {
			if _, err := RegionByCode(r); err != nil {
				return ConsentChoices{}, err
			}
		}
		if !slices.Contains(out.CareBlocks, r) {
			out.CareBlocks = append(out.CareBlocks, r)
		}
	}
	slices.Sort(out.OptOuts)
	slices.Sort(out.CareBlocks)
	tc := &out.TrialContact
	if !tc.OptIn {
		tc.Email, tc.Phone = "", ""
	} else if tc.Email == "" && tc.Phone == "" {
		return ConsentChoices{}, Errorf(EINVALID, "trial contact: give an e-mail address or a phone number to be contacted at, or leave opt_in false")
	}
	if len(tc.Email) > 254 || len(tc.Phone) > 32 {
		return ConsentChoices{}, Errorf(EINVALID, "trial contact: e-mail at most 254 characters, phone at most 32")
	}
	return out, nil
}

// Allows reports whether the choices allow use of her data for purpose at a
// node of region, and why not. Care is allowed unless she blocked sharing
// with that region (or all); recruitment needs her opt-in; every other
// secondary purpose is allowed unless she opted out of it.
func (c ConsentChoices) Allows(purpose Purpose, region string) (bool, string) {
	switch purpose {
	case PurposeCare:
		if slices.Contains(c.CareBlocks, AllRegions) || slices.Contains(c.CareBlocks, region) {
			return false, "she has blocked sharing of her care data with this region"
		}
		return true, ""
	case PurposeRecruitment:
		if !c.TrialContact.OptIn {
			return false, "she has not opted in to trial contact"
		}
		return true, ""
	}
	if slices.Contains(c.OptOuts, purpose) {
		return false, "she has opted out of " + string(purpose)
	}
	return true, ""
}

// ConsentRecord is one version of a woman's choices in the consent
// register. Version numbers the whole register's changes, so a replica can
// ask for everything after the version it holds.
type ConsentRecord struct {
	Person    PersonID       `json:"person_id"`
	Choices   ConsentChoices `json:"choices"`
	Version   int64          `json:"version"`
	ChangedAt time.Time      `json:"changed_at"`
	ChangedBy string         `json:"changed_by"` // who made the change (principal name)
}

// ConsentStore is the national consent register at the hub.
//
// PutConsent stores new choices for a person as the register's next version
// and returns the record; it is durable on return. Consent returns a
// person's current record, or a record with Version 0 and no choices when
// she never made any (everything secondary allowed, no trial contact).
// ConsentHistory lists her records, oldest first. ConsentChanges returns the
// newest record of every person changed after version since, in version
// order, at most limit, and the register's current version.
type ConsentStore interface {
	PutConsent(ctx context.Context, person PersonID, c ConsentChoices, by string) (ConsentRecord, error)
	Consent(ctx context.Context, person PersonID) (ConsentRecord, error)
	ConsentHistory(ctx context.Context, person PersonID) ([]ConsentRecord, error)
	ConsentChanges(ctx context.Context, since int64, limit int) ([]ConsentRecord, int64, error)
}

// ReplicaState is how current a node's copy of the consent register is.
type ReplicaState struct {
	Version  int64     `json:"version"`   // the register version the replica holds
	SyncedAt time.Time `json:"synced_at"` // when the hub last confirmed it current
}

// ConsentReplica is a node's own copy of the consent register.
//
// ApplyConsentChanges stores records (newer versions replace older ones per
// person) and marks the replica as holding version upTo as of time at,
// atomically. ReplicaConsent returns a person's record as the replica holds
// it (Version 0 when none).
type ConsentReplica interface {
	ApplyConsentChanges(ctx context.Context, records []ConsentRecord, upTo int64, at time.Time) error
	ReplicaState(ctx context.Context) (ReplicaState, error)
	ReplicaConsent(ctx context.Context, person PersonID) (ConsentRecord, error)
}
