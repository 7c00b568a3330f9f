package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/bildrum/bildrum"
)

// Rates of the synthetic population's choices in the consent register
// (docs/synth.md). Swedish surveys find most people willing to be asked
// about research; a national opt-in register would start small.
const (
	trialOptInRate       = 0.30 // opted in to trial contact
	researchOptOutRate   = 0.04 // opted out of research
	innovationOptOutRate = 0.08 // opted out of innovation and AI
)

// ConsentChoices returns the synthetic choices of a woman of the
// population made with seed, and false when she made none (most women):
// about 30 % opted in to trial contact, with a made-up e-mail address at
// example.com (RFC 2606) and a phone number of the range Post- och
// telestyrelsen reserves for fiction (070-1740605 to 070-1740699); a few
// opted out of research or of innovation. The choice is drawn from
// SHA-256(seed, number), so it is the same on every run.
func ConsentChoices(seed int64, id bildrum.PersonID) (bildrum.ConsentChoices, bool) {
	h := sha256.New()
	binary.Write(h, binary.BigEndian, seed)
	h.Write([]byte("consent\x00" + string(id)))
	sum := h.Sum(nil)
	u := func(i int) float64 { return float64(binary.BigEndian.Uint32(sum[4*i:])) / (1 << 32) }
	var c bildrum.ConsentChoices
	any := false
	if u(0) < trialOptInRate {
		c.TrialContact = bildrum.TrialContact{OptIn: true,
			Email: fmt.Sprintf("kvinna-%s@example.com", id[len(id)-4:]),
			Phone: fmt.Sprintf("070-17406%02d", 5+int(u(3)*95))}
		any = true
	}
	if u(1) < researchOptOutRate {
		c.OptOuts = append(c.OptOuts, bildrum.PurposeResearch)
		any = true
	}
	if u(2) < innovationOptOutRate {
		c.OptOuts = append(c.OptOuts, bildrum.PurposeInnovation)
		any = true
	}
	return c, any
}
