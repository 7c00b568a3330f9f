package tlog

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/bildrum/bildrum"
)

// The versions of the leaf format, the "v" field of every leaf.
// docs/transparency.md specifies each; a reader meeting a version it does
// not know must not guess.
//
// Version 1 is an event about one person. Version 2 adds events about no
// one person (a feasibility count, say), which carry a public Subject
// instead of the commitment and sealed details. A leaf about a person is
// still written as version 1, so that readers of version 1 keep reading
// every leaf that concerns a woman.
const (
	LeafVersionPerson   = 1
	LeafVersionNoPerson = 2
)

// Sizes of the secrets and random values of the commitment scheme, in bytes.
const (
	CommitmentKeySize = 32 // the hub's secret commitment key
	PersonKeySize     = sha256.Size
	NonceSize         = 16
)

// maxWhat bounds the resource description sealed into a leaf, so that a
// leaf always fits the 64 KiB entry limit of [tlog-tiles] with room to spare.
const maxWhat = 2048

// sealBlock is the granularity to which sealed details are padded, so that
// the ciphertext's length says little about the resource.
const sealBlock = 64

// Domain separation labels of the commitment scheme (docs/transparency.md).
const (
	labelPerson     = "bildrum/tlog/v1/person\x00"
	labelCommitment = "bildrum/tlog/v1/commitment\x00"
	labelSeal       = "bildrum/tlog/v1/seal\x00"
	labelIndex      = "bildrum/tlog/v1/index\x00"
	labelActor      = "bildrum/tlog/v1/actor\x00"
)

// ErrNotMine is returned by OpenDetails when a leaf's commitment does not
// match the person key: the leaf is about someone else (or was altered).
var ErrNotMine = errors.New("tlog: the leaf's commitment does not match this person key")

// Leaf is one access event as the public log holds it. A leaf about a
// person ("v": 1) carries no personal data of the woman in the clear: only
// a keyed commitment to her (Nonce, Commitment) and the details sealed for
// her (Sealed). A leaf about no one person ("v": 2) has none of the three
// and says what was accessed in Subject, in the clear. See
// docs/transparency.md for each field.
type Leaf struct {
	Version    int             `json:"v"`
	Time       string          `json:"time"` // RFC 3339, UTC, whole seconds
	Actor      Actor           `json:"actor"`
	Purpose    bildrum.Purpose `json:"purpose"`
	LegalBasis string          `json:"legal_basis"`          // from LegalBasis, e.g. "PDL (2008:355) 6 kap."
	Region     string          `json:"region"`               // county code of the region whose data were accessed
	Kind       string          `json:"kind"`                 // bildrum.AccessImageRead …
	Nonce      []byte          `json:"nonce,omitempty"`      // NonceSize random bytes, fresh for each leaf
	Commitment []byte          `json:"commitment,omitempty"` // Commitment(personKey, Nonce)
	Sealed     []byte          `json:"sealed,omitempty"`     // Details, AES-256-GCM under SealKey(personKey, Nonce)
	Subject    string          `json:"subject,omitempty"`    // v2 without a person only: what was accessed, public
}

// AboutPerson reports whether the leaf is about one person, and so carries
// a commitment to her rather than a public subject.
func (l Leaf) AboutPerson() bool { return l.Commitment != nil }

// Actor is who accessed, as the public log names them: organisation, role
// and region in the clear, the person behind them only as a pseudonym that
// the hub can resolve and nobody else can.
type Actor struct {
	Organisation string       `json:"organisation"`
	Role         bildrum.Role `json:"role"`
	Region       string       `json:"region,omitempty"` // the actor's own region, for region-bound roles
	ID           string       `json:"id"`               // ActorID: keyed pseudonym, stable per actor
}

// Details are what a leaf seals for the woman (and the hub): the exact
// resource and the name of the person who accessed it. Resource names carry
// indirect identifiers (Study Instance UIDs, accession numbers) that would
// link her leaves together, so they are never public.
type Details struct {
	What      string `json:"what"`
	ActorName string `json:"actor_name"`
}

// PersonKey derives the person key K_p of a person from the hub's
// commitment key: HMAC-SHA256(commitmentKey, label || id). The hub gives
// K_p to the woman after she logs in; with it she can recognise and open
// her own leaves, and nobody's else.
func PersonKey(commitmentKey []byte, id bildrum.PersonID) []byte {
	return mac(commitmentKey, labelPerson, []byte(id))
}

// Commitment is the commitment of a leaf to its person:
// HMAC-SHA256(personKey, label || nonce). Without the person key it is
// indistinguishable from random, so two leaves of one woman are unlinkable.
func Commitment(personKey, nonce []byte) []byte {
	return mac(personKey, labelCommitment, nonce)
}

// SealKey is the AES-256-GCM key that seals a leaf's Details:
// HMAC-SHA256(personKey, label || nonce). It is used for that one leaf
// only, which is why a fixed GCM nonce is safe.
func SealKey(personKey, nonce []byte) []byte {
	return mac(personKey, labelSeal, nonce)
}

// PersonTagOf is the key of a person in a PersonIndex:
// HMAC-SHA256(personKey, label). It reveals nothing of the personnummer and
// never appears in the public log.
func PersonTagOf(personKey []byte) PersonTag {
	return PersonTag(mac(personKey, labelIndex, nil))
}

// ActorID is the public pseudonym of an actor: the first 16 bytes of
// HMAC-SHA256(commitmentKey, label || organisation || 0 || name), in hex.
// It is stable, so auditors can see that one actor made many accesses;
// only the hub can tell who it is.
func ActorID(commitmentKey []byte, organisation, name string) string {
	m := mac(commitmentKey, labelActor, []byte(organisation+"\x00"+name))
	return fmt.Sprintf("%x", m[:16])
}

func mac(key []byte, label string, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	h.Write(msg)
	return h.Sum(nil)
}

// Mine reports whether the leaf is about the person whose key is given. A
// leaf about no one person is nobody's.
func (l Leaf) Mine(personKey []byte) bool {
	return l.AboutPerson() && hmac.Equal(Commitment(personKey, l.Nonce), l.Commitment)
}

// OpenDetails checks that the leaf is the person's and returns its sealed
// details. It returns ErrNotMine for someone else's leaf.
func OpenDetails(personKey []byte, l Leaf) (Details, error) {
	if !l.Mine(personKey) {
		return Details{}, ErrNotMine
	}
	aead, err := newAEAD(SealKey(personKey, l.Nonce))
	if err != nil {
		return Details{}, err
	}
	plain, err := aead.Open(nil, make([]byte, aead.NonceSize()), l.Sealed, l.Commitment)
	if err != nil {
		return Details{}, fmt.Errorf("tlog: open sealed details: %w", err)
	}
	var d Details
	if err := json.Unmarshal(bytes.TrimRight(plain, " "), &d); err != nil {
		return Details{}, fmt.Errorf("tlog: sealed details: %w", err)
	}
	return d, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("tlog: seal key: %w", err)
	}
	return cipher.NewGCM(block)
}

// ParseLeaf decodes a leaf of a version this package knows.
func ParseLeaf(b []byte) (Leaf, error) {
	var v struct {
		Version int `json:"v"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Leaf{}, fmt.Errorf("tlog: leaf is not JSON: %w", err)
	}
	if v.Version != LeafVersionPerson && v.Version != LeafVersionNoPerson {
		return Leaf{}, fmt.Errorf("tlog: leaf version %d: this program reads versions %d and %d only", v.Version, LeafVersionPerson, LeafVersionNoPerson)
	}
	var l Leaf
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Leaf{}, fmt.Errorf("tlog: leaf: %w", err)
	}
	person := l.Nonce != nil || l.Commitment != nil || l.Sealed != nil
	switch {
	case person && (len(l.Nonce) != NonceSize || len(l.Commitment) != sha256.Size || len(l.Sealed) == 0):
		return Leaf{}, fmt.Errorf("tlog: leaf: nonce of %d bytes, commitment of %d bytes and sealed details of %d bytes, want %d, %d and some", len(l.Nonce), len(l.Commitment), len(l.Sealed), NonceSize, sha256.Size)
	case person && l.Subject != "":
		return Leaf{}, errors.New("tlog: leaf: a leaf about a person has no public subject")
	case !person && l.Version == LeafVersionPerson:
		return Leaf{}, errors.New("tlog: leaf: a version 1 leaf needs a nonce, a commitment and sealed details")
	case !person && l.Subject == "":
		return Leaf{}, errors.New("tlog: leaf: a leaf about no one person needs a subject")
	}
	return l, nil
}

// leafMaker turns access events into leaves with the hub's commitment key.
type leafMaker struct {
	key []byte
	now func() time.Time
}

// make returns the encoded leaf for e and the person tag under which the
// hub indexes it; the tag is nil for an event about no one person, which
// no person's index lists.
func (m leafMaker) make(e bildrum.AccessEvent) ([]byte, *PersonTag, error) {
	if err := checkEvent(e); err != nil {
		return nil, nil, err
	}
	t := e.Time
	if t.IsZero() {
		t = m.now()
	}
	l := Leaf{
		Version: LeafVersionPerson,
		Time:    t.UTC().Truncate(time.Second).Format(time.RFC3339),
		Actor: Actor{
			Organisation: e.Actor.Organisation,
			Role:         e.Actor.Role,
			Region:       e.Actor.Region,
			ID:           ActorID(m.key, e.Actor.Organisation, e.Actor.Name),
		},
		Purpose:    e.Purpose,
		LegalBasis: LegalBasis(e.Purpose, e.Actor.Region, e.Region),
		Region:     e.Region,
		Kind:       e.Kind,
	}
	if e.Person == "" {
		l.Version, l.Subject = LeafVersionNoPerson, truncate(e.What, maxWhat)
		b, err := json.Marshal(l)
		if err != nil {
			return nil, nil, fmt.Errorf("tlog: leaf: %w", err)
		}
		return b, nil, nil
	}
	pk := PersonKey(m.key, e.Person)
	l.Nonce = make([]byte, NonceSize)
	if _, err := rand.Read(l.Nonce); err != nil {
		return nil, nil, fmt.Errorf("tlog: nonce: %w", err)
	}
	l.Commitment = Commitment(pk, l.Nonce)
	plain, err := json.Marshal(Details{What: truncate(e.What, maxWhat), ActorName: e.Actor.Name})
	if err != nil {
		return nil, nil, fmt.Errorf("tlog: details: %w", err)
	}
	if pad := sealBlock - len(plain)%sealBlock; pad < sealBlock {
		plain = append(plain, bytes.Repeat([]byte(" "), pad)...)
	}
	aead, err := newAEAD(SealKey(pk, l.Nonce))
	if err != nil {
		return nil, nil, err
	}
	l.Sealed = aead.Seal(nil, make([]byte, aead.NonceSize()), plain, l.Commitment)
	b, err := json.Marshal(l)
	if err != nil {
		return nil, nil, fmt.Errorf("tlog: leaf: %w", err)
	}
	tag := PersonTagOf(pk)
	return b, &tag, nil
}

// checkEvent rejects events that would make a useless or unlawful leaf.
func checkEvent(e bildrum.AccessEvent) error {
	switch {
	case e.Person == "" && !bildrum.AboutNoPerson(e.Kind):
		return bildrum.Errorf(bildrum.EINVALID, "access event of kind %q without a person: say whose data were accessed", e.Kind)
	case e.Person != "" && bildrum.AboutNoPerson(e.Kind):
		return bildrum.Errorf(bildrum.EINVALID, "access event of kind %q names a person, but that kind is about no one person and its description is public", e.Kind)
	case e.Person == "" && e.What == "":
		return bildrum.Errorf(bildrum.EINVALID, "access event of kind %q without a description of what was accessed", e.Kind)
	case e.Kind == "":
		return bildrum.Errorf(bildrum.EINVALID, "access event without a kind, e.g. %q", bildrum.AccessImageRead)
	case e.Region == "":
		return bildrum.Errorf(bildrum.EINVALID, "access event without the region whose data were accessed")
	case e.Actor.Role == "":
		return bildrum.Errorf(bildrum.EINVALID, "access event without the actor's role")
	case len(e.Kind) > 64 || len(e.Region) > 16 || len(e.Actor.Region) > 16 || len(e.Actor.Role) > 64:
		return bildrum.Errorf(bildrum.EINVALID, "access event with a kind, region or role too long for a code")
	case len(e.Actor.Organisation) > 256 || len(e.Actor.Name) > 256:
		return bildrum.Errorf(bildrum.EINVALID, "access event with an organisation or actor name longer than 256 bytes")
	}
	// An empty purpose is the woman's own act (changing her choices).
	if _, err := bildrum.ParsePurpose(string(e.Purpose)); err != nil && e.Purpose != "" {
		return err
	}
	return nil
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-len("…")]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// LegalBasis returns the legal basis recorded for an access with the given
// purpose, by an actor of actorRegion to data of region. The table is part
// of leaf version 1 and docs/transparency.md lists it; a change of wording
// is a new leaf version.
func LegalBasis(p bildrum.Purpose, actorRegion, region string) string {
	switch p {
	case bildrum.PurposeCare:
		if actorRegion != "" && actorRegion != region {
			return "PDL (2008:355) 6 kap. sammanhållen journalföring"
		}
		return "PDL (2008:355) 4 kap. inre sekretess hos vårdgivaren"
	case bildrum.PurposeResearch:
		return "EHDS (EU) 2025/327 art. 53.1 e, datatillstånd; etikprövningslagen (2003:460)"
	case bildrum.PurposeStatistics:
		return "EHDS (EU) 2025/327 art. 53.1 c, datatillstånd; lag (2001:99) om den officiella statistiken"
	case bildrum.PurposeInnovation:
		return "EHDS (EU) 2025/327 art. 53.1 e i–ii, datatillstånd"
	case bildrum.PurposeQuality:
		return "PDL (2008:355) 7 kap. kvalitetsregister; EHDS (EU) 2025/327 art. 53.1 a"
	case bildrum.PurposeGovernance:
		return "EHDS (EU) 2025/327 art. 53.1 b, datatillstånd"
	case bildrum.PurposeSupervision:
		return "patientsäkerhetslagen (2010:659) 7 kap. tillsyn"
	case bildrum.PurposeEducation:
		return "EHDS (EU) 2025/327 art. 53.1 d, datatillstånd"
	case bildrum.PurposeRecruitment:
		return "samtycke, GDPR art. 6.1 a och 9.2 a"
	case "":
		// No purpose of use: the woman's own act, such as changing her choices.
		return "hennes egen begäran: GDPR art. 21 invändning; EHDS (EU) 2025/327 art. 71 opt-out"
	}
	return ""
}

// b64 is the encoding of hashes in the JSON API.
var b64 = base64.StdEncoding
