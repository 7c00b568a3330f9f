package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/bildrum/bildrum"
)

// FHIR systems used in Consent resources.
const (
	SystemPersonnummer      = "urn:oid:1.2.752.129.2.1.3.1"
	SystemSamordningsnummer = "urn:oid:1.2.752.129.2.1.3.3"
	SystemActReason         = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemActCode           = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	SystemConsentScope      = "http://terminology.hl7.org/CodeSystem/consentscope"
	SystemLOINC             = "http://loinc.org"
	SystemRegion            = "https://bildrum.se/fhir/NamingSystem/county-code"
)

// PurposeCode is the v3-ActReason code of a purpose, as a Consent's
// provision.purpose carries it (DESIGN.md: an opt-out is a deny provision
// with the purpose as a v3-ActReason code).
var purposeCodes = map[bildrum.Purpose][2]string{
	bildrum.PurposeCare:        {"TREAT", "treatment"},
	bildrum.PurposeResearch:    {"HRESCH", "healthcare research"},
	bildrum.PurposeStatistics:  {"POPHLTH", "population health"},
	bildrum.PurposeInnovation:  {"SYSDEV", "system development"},
	bildrum.PurposeQuality:     {"HQUALIMP", "healthcare quality improvement"},
	bildrum.PurposeGovernance:  {"GOV", "government"},
	bildrum.PurposeSupervision: {"HCOMPL", "health compliance"},
	bildrum.PurposeEducation:   {"TRAIN", "training"},
	bildrum.PurposeRecruitment: {"CLINTRCH", "clinical trial research"},
}

// PurposeCode returns the v3-ActReason code and display of a purpose.
func PurposeCode(p bildrum.Purpose) (code, display string) {
	c := purposeCodes[p]
	return c[0], c[1]
}

// Resource is the subset of FHIR R4 Consent that bildrum writes.
type Resource struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         *Meta             `json:"meta,omitempty"`
	Status       string            `json:"status"`
	Scope        CodeableConcept   `json:"scope"`
	Category     []CodeableConcept `json:"category"`
	Patient      Reference         `json:"patient"`
	DateTime     string            `json:"dateTime"`
	PolicyRule   CodeableConcept   `json:"policyRule"`
	Provision    Provision         `json:"provision"`
}

// Meta carries the version of the register the resource was made from.
type Meta struct {
	VersionID   string `json:"versionId"`
	LastUpdated string `json:"lastUpdated"`
}

// CodeableConcept is FHIR's coded value.
type CodeableConcept struct {
	Coding []Coding `json:"coding"`
	Text   string   `json:"text,omitempty"`
}

// Coding is one code in a system.
type Coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// Reference points at a resource by identifier.
type Reference struct {
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is a business identifier.
type Identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// Provision is a Consent's rule: permit or deny, for purposes, for actors.
type Provision struct {
	Type    string           `json:"type"`
	Purpose []Coding         `json:"purpose"`
	Actor   []ProvisionActor `json:"actor,omitempty"`
}

// ProvisionActor limits a provision to an organisation.
type ProvisionActor struct {
	Role      CodeableConcept `json:"role"`
	Reference Reference       `json:"reference"`
}

// Bundle is a FHIR searchset.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        int           `json:"total"`
	Entry        []BundleEntry `json:"entry"`
}

// BundleEntry is one resource of a Bundle.
type BundleEntry struct {
	FullURL  string   `json:"fullUrl"`
	Resource Resource `json:"resource"`
}

// Resources returns a woman's current choices as FHIR R4 Consent
// resources: one deny per opted-out purpose, a permit for trial contact
// when she opted in, and a deny of care sharing per blocked region. A woman
// who made no choice has none: everything secondary is allowed by default.
func Resources(rec bildrum.ConsentRecord) []Resource {
	system := SystemPersonnummer
	if rec.Person.IsCoordinationNumber() {
		system = SystemSamordningsnummer
	}
	base := Resource{
		ResourceType: "Consent",
		Meta:         &Meta{VersionID: strconv.FormatInt(rec.Version, 10), LastUpdated: rec.ChangedAt.UTC().Format(time.RFC3339)},
		Status:       "active",
		Scope:        CodeableConcept{Coding: []Coding{{System: SystemConsentScope, Code: "patient-privacy", Display: "Privacy Consent"}}},
		Category:     []CodeableConcept{{Coding: []Coding{{System: SystemLOINC, Code: "59284-0", Display: "Patient Consent"}}}},
		Patient:      Reference{Identifier: &Identifier{System: system, Value: string(rec.Person)}},
		DateTime:     rec.ChangedAt.UTC().Format(time.RFC3339),
	}
	id := func(what string) string {
		sum := sha256.Sum256([]byte(string(rec.Person) + "|" + what))
		return "c" + hex.EncodeToString(sum[:8]) + "-" + strconv.FormatInt(rec.Version, 10)
	}
	var out []Resource
	for _, p := range rec.Choices.OptOuts {
		r := base
		code, display := PurposeCode(p)
		r.ID = id(string(p))
		r.PolicyRule = CodeableConcept{Coding: []Coding{{System: SystemActCode, Code: "OPTOUT", Display: "opt-out"}}}
		r.Provision = Provision{Type: "deny", Purpose: []Coding{{System: SystemActReason, Code: code, Display: display}}}
		out = append(out, r)
	}
	if rec.Choices.TrialContact.OptIn {
		r := base
		code, display := PurposeCode(bildrum.PurposeRecruitment)
		r.ID = id("recruitment")
		r.Scope = CodeableConcept{Coding: []Coding{{System: SystemConsentScope, Code: "research", Display: "Research"}}}
		r.PolicyRule = CodeableConcept{Coding: []Coding{{System: SystemActCode, Code: "OPTIN", Display: "opt-in"}}}
		r.Provision = Provision{Type: "permit", Purpose: []Coding{{System: SystemActReason, Code: code, Display: display}}}
		out = append(out, r)
	}
	for _, region := range rec.Choices.CareBlocks {
		r := base
		code, display := PurposeCode(bildrum.PurposeCare)
		r.ID = id("care-" + region)
		r.PolicyRule = CodeableConcept{Coding: []Coding{{System: SystemActCode, Code: "OPTOUT", Display: "opt-out"}}}
		r.Provision = Provision{Type: "deny", Purpose: []Coding{{System: SystemActReason, Code: code, Display: display}}}
		if region != bildrum.AllRegions {
			reg, _ := bildrum.RegionByCode(region)
			r.Provision.Actor = []ProvisionActor{{
				Role:      CodeableConcept{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", Code: "PRCP", Display: "primary information recipient"}}},
				Reference: Reference{Identifier: &Identifier{System: SystemRegion, Value: region}, Display: "Region " + reg.Name},
			}}
		}
		out = append(out, r)
	}
	return out
}

// SearchBundle wraps resources in a searchset Bundle, as GET /fhir/Consent answers.
func SearchBundle(base string, rs []Resource) Bundle {
	b := Bundle{ResourceType: "Bundle", Type: "searchset", Total: len(rs), Entry: []BundleEntry{}}
	for _, r := range rs {
		b.Entry = append(b.Entry, BundleEntry{FullURL: base + "/fhir/Consent/" + r.ID, Resource: r})
	}
	return b
}
