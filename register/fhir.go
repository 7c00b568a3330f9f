package register

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"

	"github.com/bildrum/bildrum"
)

// The FHIR R4 form of the register: one transaction Bundle holds episodes as
// an ImagingStudy each (the invitation and its screening examination), with
// the woman's Patient, the readings and the breast density as Observations,
// and the result, assessment and diagnosis on a DiagnosticReport.
// docs/register.md maps every CSV column to its element.

// Identifier systems of the register's FHIR form.
const (
	// SystemPersonnummer is the identifier system of a personnummer
	// (Skatteverket's OID), on Patient.identifier.
	SystemPersonnummer = "urn:oid:1.2.752.129.2.1.3.1"
	// SystemSamordningsnummer is the identifier system of a
	// samordningsnummer, on Patient.identifier.
	SystemSamordningsnummer = "urn:oid:1.2.752.129.2.1.3.3"
	// SystemEpisode is the identifier system of episode ids, on
	// ImagingStudy.identifier; ids are unique within a region.
	SystemEpisode = fhirBase + "/sid/screening-episode"
	// SystemUnit is the identifier system of screening unit codes, on the
	// logical reference ImagingStudy.location.identifier.
	SystemUnit = fhirBase + "/sid/screening-unit"
)

// Code systems and base URLs.
const (
	fhirBase                = "https://bildrum.se/fhir"
	structureDefinitionBase = fhirBase + "/StructureDefinition/"
	codeSystemReading       = fhirBase + "/CodeSystem/reading"
	codeSystemScreenResult  = fhirBase + "/CodeSystem/screening-result"
	codeSystemOutcome       = fhirBase + "/CodeSystem/outcome"
	systemSNOMED            = "http://snomed.info/sct"
	systemLOINC             = "http://loinc.org"
	systemDCM               = "http://dicom.nema.org/resources/ontology/DCM"
	systemUCUM              = "http://unitsofmeasure.org"
	systemObsCategory       = "http://terminology.hl7.org/CodeSystem/observation-category"
)

// The bildrum extensions, each defined by the CSV column of the same
// meaning (docs/register.md).
const (
	extRegion              = structureDefinitionBase + "screening-region"       // ImagingStudy, valueCode: region
	extRound               = structureDefinitionBase + "screening-round"        // ImagingStudy, valuePositiveInt: round
	extInvitationDate      = structureDefinitionBase + "invitation-date"        // ImagingStudy, valueDate: invitation_date
	extTechnicalRepeat     = structureDefinitionBase + "technical-repeat"       // ImagingStudy, valueBoolean: technical_repeat
	extView                = structureDefinitionBase + "mammography-view"       // ImagingStudy.series, valueCoding: the view (CID 4014)
	extResultDate          = structureDefinitionBase + "result-date"            // DiagnosticReport, valueDate: result_date
	extAssessmentDate      = structureDefinitionBase + "assessment-date"        // DiagnosticReport, valueDate: assessment_date
	extAssessmentProcedure = structureDefinitionBase + "assessment-procedure"   // DiagnosticReport, valueCode, repeats
	extDetection           = structureDefinitionBase + "detection"              // DiagnosticReport, valueCode: detection
	extDiagnosisDate       = structureDefinitionBase + "diagnosis-date"         // DiagnosticReport, valueDate: diagnosis_date
	extTumourSize          = structureDefinitionBase + "tumour-size"            // DiagnosticReport, valueQuantity (mm): tumour_size_mm
	extNodalStatus         = structureDefinitionBase + "nodal-status"           // DiagnosticReport, valueCode: nodal_status
	extStage               = structureDefinitionBase + "stage"                  // DiagnosticReport, valueCode: stage
	extPreop               = structureDefinitionBase + "preoperative-diagnosis" // DiagnosticReport, valueBoolean
	extIntervalMonths      = structureDefinitionBase + "interval-months"        // DiagnosticReport, valueInteger
)

// Codes of the resources.
var (
	// codeScreeningReport is LOINC 24606-6 "MG Breast Screening", the code
	// of the screening DiagnosticReport.
	codeScreeningReport = coding{System: systemLOINC, Code: "24606-6", Display: "MG Breast Screening"}
	// codeAssessment is DICOM 111413 "Overall Assessment" (CID 6053), the
	// code of a BI-RADS assessment Observation.
	codeAssessment = coding{System: systemDCM, Code: "111413", Display: "Overall Assessment"}
	// codeComposition is SNOMED CT 129715009 "Breast composition" (CID
	// 6053), the code of the density Observation.
	codeComposition = coding{System: systemSNOMED, Code: "129715009", Display: "Breast composition"}
	// codeModalityMG is the DICOM modality of mammography.
	codeModalityMG = coding{System: systemDCM, Code: "MG", Display: "Mammography"}
	// codeBreast is SNOMED CT 76752008 "Breast structure", the body site of
	// every series.
	codeBreast = coding{System: systemSNOMED, Code: "76752008", Display: "Breast structure"}
	// codeImaging is the observation category "imaging".
	codeImaging = coding{System: systemObsCategory, Code: "imaging", Display: "Imaging"}
)

// biradsCodes are the SNOMED CT findings of the BI-RADS categories (DICOM
// CID 6027; 6 from the SNOMED CT US edition).
var biradsCodes = map[bildrum.BIRADS]coding{
	"0": {systemSNOMED, "397138000", "Mammography assessment (Category 0) - Need additional imaging evaluation"},
	"1": {systemSNOMED, "397140005", "Mammography assessment (Category 1) - Negative"},
	"2": {systemSNOMED, "397141009", "Mammography assessment (Category 2) - Benign finding"},
	"3": {systemSNOMED, "397143007", "Mammography assessment (Category 3) - Probably benign finding"},
	"4": {systemSNOMED, "397144001", "Mammography assessment (Category 4) - Suspicious abnormality"},
	"5": {systemSNOMED, "397145000", "Mammography assessment (Category 5) - Highly suggestive of malignancy"},
	"6": {systemSNOMED, "6111000179101", "Mammography assessment (Category 6) - Known biopsy proven malignancy"},
}

// densityCodes are the SNOMED CT findings of the ACR breast compositions.
var densityCodes = map[bildrum.Density]coding{
	"a": {systemSNOMED, "129716005", "Almost entirely fat breast composition"},
	"b": {systemSNOMED, "129717001", "Scattered fibroglandular densities"},
	"c": {systemSNOMED, "129718006", "Heterogeneously dense breast composition"},
	"d": {systemSNOMED, "129719003", "Extremely dense breast composition"},
}

// viewCodes are the SNOMED CT views of DICOM CID 4014 by the view part of a
// view code (RCC → CC).
var viewCodes = map[string]coding{
	"CC":  {systemSNOMED, "399162004", "cranio-caudal"},
	"MLO": {systemSNOMED, "399368009", "medio-lateral oblique"},
}

// lateralityCodes are the SNOMED CT sides of a series (DICOM CID 244).
var lateralityCodes = map[string]coding{
	"R": {systemSNOMED, "24028007", "Right"},
	"L": {systemSNOMED, "7771000", "Left"},
}

// Readings: the Observation.method codes that tell the four BI-RADS
// Observations of an episode apart, and the register column of each.
var readingColumns = map[string]int{
	"reader-1":   colReader1,
	"reader-2":   colReader2,
	"consensus":  colConsensus,
	"assessment": colAssessmentBIRADS,
}

// assessmentProcedures are the codes of extAssessmentProcedure and their
// register columns.
var assessmentProcedures = map[string]int{
	"additional-imaging":   colAdditionalImaging,
	"ultrasound":           colUltrasound,
	"needle-biopsy":        colNeedleBiopsy,
	"open-surgical-biopsy": colOpenBiopsy,
}

// The FHIR R4 JSON of the elements the register uses. Elements not listed
// are checked by the schema and otherwise ignored.
type (
	fhirBundle struct {
		ResourceType string        `json:"resourceType"`
		Type         string        `json:"type"`
		Entry        []bundleEntry `json:"entry,omitempty"`
	}
	bundleEntry struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource,omitempty"`
		Request  *bundleRequest  `json:"request,omitempty"`
	}
	bundleRequest struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	}
	coding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code,omitempty"`
		Display string `json:"display,omitempty"`
	}
	codeableConcept struct {
		Coding []coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	identifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value,omitempty"`
	}
	reference struct {
		Reference  string      `json:"reference,omitempty"`
		Identifier *identifier `json:"identifier,omitempty"`
	}
	quantity struct {
		Value  json.Number `json:"value,omitempty"`
		Unit   string      `json:"unit,omitempty"`
		System string      `json:"system,omitempty"`
		Code   string      `json:"code,omitempty"`
	}
	extension struct {
		URL              string       `json:"url"`
		ValueBoolean     *bool        `json:"valueBoolean,omitempty"`
		ValueCode        string       `json:"valueCode,omitempty"`
		ValueDate        string       `json:"valueDate,omitempty"`
		ValueInteger     *json.Number `json:"valueInteger,omitempty"`
		ValuePositiveInt *json.Number `json:"valuePositiveInt,omitempty"`
		ValueCoding      *coding      `json:"valueCoding,omitempty"`
		ValueQuantity    *quantity    `json:"valueQuantity,omitempty"`
	}
	// resourceHead holds what every resource has.
	resourceHead struct {
		ResourceType      string            `json:"resourceType"`
		ModifierExtension []json.RawMessage `json:"modifierExtension,omitempty"`
	}
	fhirPatient struct {
		ResourceType string       `json:"resourceType"`
		Identifier   []identifier `json:"identifier,omitempty"`
	}
	fhirImagingStudy struct {
		ResourceType string       `json:"resourceType"`
		Extension    []extension  `json:"extension,omitempty"`
		Identifier   []identifier `json:"identifier,omitempty"`
		Status       string       `json:"status,omitempty"`
		Modality     []coding     `json:"modality,omitempty"`
		Subject      reference    `json:"subject"`
		Started      string       `json:"started,omitempty"`
		Location     *reference   `json:"location,omitempty"`
		Series       []fhirSeries `json:"series,omitempty"`
	}
	fhirSeries struct {
		Extension  []extension `json:"extension,omitempty"`
		UID        string      `json:"uid,omitempty"`
		Modality   coding      `json:"modality"`
		BodySite   *coding     `json:"bodySite,omitempty"`
		Laterality *coding     `json:"laterality,omitempty"`
	}
	fhirObservation struct {
		ResourceType         string            `json:"resourceType"`
		Status               string            `json:"status,omitempty"`
		Category             []codeableConcept `json:"category,omitempty"`
		Code                 codeableConcept   `json:"code"`
		Subject              *reference        `json:"subject,omitempty"`
		EffectiveDateTime    string            `json:"effectiveDateTime,omitempty"`
		ValueCodeableConcept *codeableConcept  `json:"valueCodeableConcept,omitempty"`
		Method               *codeableConcept  `json:"method,omitempty"`
		DerivedFrom          []reference       `json:"derivedFrom,omitempty"`
	}
	fhirDiagnosticReport struct {
		ResourceType      string            `json:"resourceType"`
		Extension         []extension       `json:"extension,omitempty"`
		Status            string            `json:"status,omitempty"`
		Code              codeableConcept   `json:"code"`
		Subject           *reference        `json:"subject,omitempty"`
		EffectiveDateTime string            `json:"effectiveDateTime,omitempty"`
		ImagingStudy      []reference       `json:"imagingStudy,omitempty"`
		Result            []reference       `json:"result,omitempty"`
		ConclusionCode    []codeableConcept `json:"conclusionCode,omitempty"`
	}
)

// MarshalBundle returns the episodes as a FHIR R4 transaction Bundle
// (JSON), the form ImportFHIR reads: for systems that send the register as
// FHIR, an example of every element, and for tests. Each distinct woman
// gets one Patient entry. Full URLs are urn:uuid: derived from the episode
// ids, so the same episodes give the same Bundle.
func MarshalBundle(episodes []bildrum.ScreeningEpisode) ([]byte, error) {
	b := fhirBundle{ResourceType: "Bundle", Type: "transaction"}
	patients := make(map[bildrum.PersonID]string)
	for i := range episodes {
		e := &episodes[i]
		pat, ok := patients[e.Person]
		if !ok {
			pat = uuidURN("Patient", string(e.Person))
			patients[e.Person] = pat
			if err := b.add(pat, patientOf(e.Person), "PUT", "Patient?identifier="+personSystem(e.Person)+"|"+string(e.Person)); err != nil {
				return nil, err
			}
		}
		if err := b.addEpisode(e, pat); err != nil {
			return nil, err
		}
	}
	return json.Marshal(b)
}

// add appends a resource entry.
func (b *fhirBundle) add(fullURL string, resource any, method, url string) error {
	raw, err := json.Marshal(resource)
	if err != nil {
		return fmt.Errorf("fhir bundle: %w", err)
	}
	b.Entry = append(b.Entry, bundleEntry{FullURL: fullURL, Resource: raw, Request: &bundleRequest{Method: method, URL: url}})
	return nil
}

// addEpisode appends the ImagingStudy of an episode and, when she was
// examined, its Observations and DiagnosticReport.
func (b *fhirBundle) addEpisode(e *bildrum.ScreeningEpisode, patient string) error {
	study := uuidURN("ImagingStudy", e.Region+"|"+e.ID)
	if err := b.add(study, imagingStudyOf(e, patient), "PUT", "ImagingStudy?identifier="+SystemEpisode+"|"+e.ID); err != nil {
		return err
	}
	if !e.Attended {
		return nil
	}
	var results []reference
	for _, r := range []struct {
		method string
		value  bildrum.BIRADS
		date   bildrum.Date
	}{{"reader-1", e.Reader1, e.Examined}, {"reader-2", e.Reader2, e.Examined}, {"consensus", e.Consensus, e.Examined}, {"assessment", e.AssessmentBIRADS, e.Assessed}} {
		if r.value == "" {
			continue
		}
		url := uuidURN("Observation/"+r.method, e.Region+"|"+e.ID)
		obs := observationOf(patient, study, codeAssessment, biradsCodes[r.value], r.date)
		obs.Method = &codeableConcept{Coding: []coding{{System: codeSystemReading, Code: r.method}}}
		if err := b.add(url, obs, "POST", "Observation"); err != nil {
			return err
		}
		results = append(results, reference{Reference: url})
	}
	if e.Density != "" {
		url := uuidURN("Observation/density", e.Region+"|"+e.ID)
		if err := b.add(url, observationOf(patient, study, codeComposition, densityCodes[e.Density], e.Examined), "POST", "Observation"); err != nil {
			return err
		}
		results = append(results, reference{Reference: url})
	}
	report := reportOf(e, patient, study, results)
	return b.add(uuidURN("DiagnosticReport", e.Region+"|"+e.ID), report, "POST", "DiagnosticReport")
}

// personSystem is the identifier system of the woman's number.
func personSystem(id bildrum.PersonID) string {
	if id.IsCoordinationNumber() {
		return SystemSamordningsnummer
	}
	return SystemPersonnummer
}

func patientOf(id bildrum.PersonID) fhirPatient {
	return fhirPatient{ResourceType: "Patient", Identifier: []identifier{{System: personSystem(id), Value: string(id)}}}
}

func imagingStudyOf(e *bildrum.ScreeningEpisode, patient string) fhirImagingStudy {
	s := fhirImagingStudy{
		ResourceType: "ImagingStudy",
		Extension: []extension{
			{URL: extRegion, ValueCode: e.Region},
			{URL: extRound, ValuePositiveInt: number(e.Round)},
			{URL: extInvitationDate, ValueDate: e.Invited.String()},
		},
		Identifier: []identifier{{System: SystemEpisode, Value: e.ID}},
		Status:     "cancelled",
		Modality:   []coding{codeModalityMG},
		Subject:    reference{Reference: patient},
		Location:   &reference{Identifier: &identifier{System: SystemUnit, Value: e.Unit}},
	}
	if !e.Attended {
		return s
	}
	s.Status = "available"
	s.Started = e.Examined.String()
	s.Extension = append(s.Extension, extension{URL: extTechnicalRepeat, ValueBoolean: &e.TechnicalRepeat})
	for _, v := range e.Views {
		s.Series = append(s.Series, fhirSeries{
			Extension:  []extension{{URL: extView, ValueCoding: ptr(viewCodes[v[1:]])}},
			UID:        seriesUID(e, v),
			Modality:   codeModalityMG,
			BodySite:   ptr(codeBreast),
			Laterality: ptr(lateralityCodes[v[:1]]),
		})
	}
	return s
}

func observationOf(patient, study string, code, value coding, date bildrum.Date) *fhirObservation {
	return &fhirObservation{
		ResourceType:         "Observation",
		Status:               "final",
		Category:             []codeableConcept{{Coding: []coding{codeImaging}}},
		Code:                 codeableConcept{Coding: []coding{code}},
		Subject:              &reference{Reference: patient},
		EffectiveDateTime:    date.String(),
		ValueCodeableConcept: &codeableConcept{Coding: []coding{value}},
		DerivedFrom:          []reference{{Reference: study}},
	}
}

// reportOf is the DiagnosticReport of an examined episode: its result,
// and the assessment and diagnosis that followed.
func reportOf(e *bildrum.ScreeningEpisode, patient, study string, results []reference) fhirDiagnosticReport {
	r := fhirDiagnosticReport{
		ResourceType:      "DiagnosticReport",
		Status:            "registered",
		Code:              codeableConcept{Coding: []coding{codeScreeningReport}},
		Subject:           &reference{Reference: patient},
		EffectiveDateTime: e.Examined.String(),
		ImagingStudy:      []reference{{Reference: study}},
		Result:            results,
	}
	if e.Recalled || e.Consensus != "" || !e.ResultDay.IsZero() {
		r.Status = "final"
		result := "no-recall"
		if e.Recalled {
			result = "recall"
		}
		r.ConclusionCode = append(r.ConclusionCode, codeableConcept{Coding: []coding{{System: codeSystemScreenResult, Code: result}}})
	}
	if e.Outcome != "" {
		r.ConclusionCode = append(r.ConclusionCode, codeableConcept{Coding: []coding{{System: codeSystemOutcome, Code: string(e.Outcome)}}})
	}
	add := func(x extension) { r.Extension = append(r.Extension, x) }
	if !e.ResultDay.IsZero() {
		add(extension{URL: extResultDate, ValueDate: e.ResultDay.String()})
	}
	if !e.Assessed.IsZero() {
		add(extension{URL: extAssessmentDate, ValueDate: e.Assessed.String()})
	}
	for _, p := range []struct {
		code string
		done bool
	}{{"additional-imaging", e.AdditionalImaging}, {"ultrasound", e.Ultrasound}, {"needle-biopsy", e.NeedleBiopsy}, {"open-surgical-biopsy", e.OpenBiopsy}} {
		if p.done {
			add(extension{URL: extAssessmentProcedure, ValueCode: p.code})
		}
	}
	if e.Detection != "" {
		add(extension{URL: extDetection, ValueCode: string(e.Detection)})
	}
	if !e.Diagnosed.IsZero() {
		add(extension{URL: extDiagnosisDate, ValueDate: e.Diagnosed.String()})
	}
	if e.TumourSizeMM != 0 {
		add(extension{URL: extTumourSize, ValueQuantity: &quantity{Value: json.Number(strconv.Itoa(e.TumourSizeMM)), Unit: "mm", System: systemUCUM, Code: "mm"}})
	}
	if e.NodalStatus != "" {
		add(extension{URL: extNodalStatus, ValueCode: e.NodalStatus})
	}
	if e.Stage != "" {
		add(extension{URL: extStage, ValueCode: e.Stage})
	}
	if e.Outcome != "" {
		add(extension{URL: extPreop, ValueBoolean: &e.PreopDiagnosis})
	}
	if e.IntervalMonths != 0 {
		add(extension{URL: extIntervalMonths, ValueInteger: number(e.IntervalMonths)})
	}
	return r
}

func number(n int) *json.Number {
	v := json.Number(strconv.Itoa(n))
	return &v
}

func ptr[T any](v T) *T { return &v }

// uuidURN returns a urn:uuid: made from a SHA-256 of the kind and key
// (version 8, RFC 9562 §5.8): the same episode always gets the same URL.
func uuidURN(kind, key string) string {
	h := sha256.Sum256([]byte("bildrum register|" + kind + "|" + key))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// seriesUID is a DICOM UID for a view's series under the 2.25 root (UUID
// as an integer, PS3.5 §B.2), derived from the episode and the view.
func seriesUID(e *bildrum.ScreeningEpisode, view string) string {
	h := sha256.Sum256([]byte("bildrum series|" + e.Region + "|" + e.ID + "|" + view))
	return "2.25." + new(big.Int).SetBytes(h[:16]).String()
}
