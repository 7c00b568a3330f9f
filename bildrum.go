// Package bildrum is the domain of the national federated data space for
// diagnostic imaging: regions, persons, purposes of use, screening register
// episodes, principals, and the store interfaces the capabilities offer.
//
// It imports nothing of the module and no net/http, so every adapter
// (sqlstore, web, federation, synth …) depends inward on it and never on each
// other's internals.
package bildrum

import "time"

// Version is the software version reported by every part in its status.
const Version = "0.1.0"

// DateLayout is the layout of calendar dates in files and APIs (ISO 8601).
const DateLayout = "2006-01-02"

// Now is the clock signature injected into parts that depend on time, so that
// tests control expiry, versions and checkpoints without sleeping.
type Now func() time.Time
