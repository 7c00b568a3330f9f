package register

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bildrum/bildrum"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ImportFHIR reads a FHIR R4 transaction Bundle (JSON) of register episodes
// from r, in the form MarshalBundle writes and docs/register.md specifies,
// and stores them in store in one transaction, like ImportCSV: all episodes
// or none.
//
// The Bundle is read entry by entry, up to opts.MaxBytes. Each entry is
// checked against the official FHIR R4 JSON schema (embedded); then the
// register's own rules: references resolve to entries of the Bundle by their
// urn:uuid: full URLs, codes and identifiers are the ones the register
// knows, and every episode passes the checks of a CSV row. Errors name the
// entry, its resource type and the JSON path. A Bundle with any error stores
// nothing; the error is then a *bildrum.Error with code EINVALID, and the
// Report lists the errors. Report.Rows counts episodes (ImagingStudy
// entries).
func ImportFHIR(ctx context.Context, r io.Reader, opts Options, store Store) (Report, error) {
	opts, err := opts.withDefaults("bundle.json")
	if err != nil {
		return Report{}, err
	}
	schemas, err := fhirSchemas()
	if err != nil {
		return Report{}, err
	}
	imp := &fhirImport{opts: opts, schemas: schemas, check: newChecker(opts.Region, opts.Now())}
	imp.report.File = opts.FileName
	imp.coll = collector{report: &imp.report, max: opts.MaxErrors}
	in := &countingReader{r: r, progress: opts.Progress}
	if err := imp.read(in); err != nil {
		return imp.report, fmt.Errorf("import %s: read: %w", opts.FileName, err)
	}
	in.reportProgress()
	if !imp.coll.failed() {
		imp.link()
	}
	if imp.coll.failed() {
		return imp.report, imp.coll.rejection()
	}
	res, err := store.PutEpisodeStream(ctx, imp.sequence())
	if err != nil {
		return imp.report, fmt.Errorf("import %s: %w", opts.FileName, err)
	}
	imp.report.Changed, imp.report.Unchanged = res.Changed, res.Unchanged
	return imp.report, nil
}

// fhirImport is the state of one ImportFHIR.
type fhirImport struct {
	opts    Options
	schemas map[string]*jsonschema.Schema
	check   checker
	report  Report
	coll    collector

	entries  []*fhirEntry
	byURL    map[string]*fhirEntry
	drafts   []*draft
	episodes []bildrum.ScreeningEpisode
}

// fhirEntry is one decoded entry of the Bundle.
type fhirEntry struct {
	index   int
	entry   bundleEntry
	typ     string
	patient *fhirPatient
	study   *fhirImagingStudy
	obs     *fhirObservation
	report  *fhirDiagnosticReport
	draft   *draft // the episode of an ImagingStudy
	linked  bool   // an Observation or DiagnosticReport found its ImagingStudy
}

// place is where in the Bundle a value comes from.
type place struct {
	entry *fhirEntry
	path  string
}

// path returns the JSON path of the entry's resource with more appended.
func (e *fhirEntry) path(more string, args ...any) place {
	return place{e, fmt.Sprintf("Bundle.entry[%d].resource", e.index) + fmt.Sprintf(more, args...)}
}

// errorAt records an error at a place.
func (imp *fhirImport) errorAt(at place, field, format string, args ...any) {
	fe := FieldError{File: imp.opts.FileName, Path: at.path, Field: field, Message: fmt.Sprintf(format, args...)}
	if at.entry != nil {
		fe.Entry, fe.Resource = ptr(at.entry.index), at.entry.typ
	}
	imp.coll.add(fe)
}

// fatal records an error of the Bundle as a whole, which ends reading.
func (imp *fhirImport) fatal(path, msg string) {
	imp.coll.add(FieldError{File: imp.opts.FileName, Path: path, Message: msg})
	if imp.coll.fatal == "" {
		imp.coll.fatal = msg
	}
}

// read decodes the Bundle entry by entry, checking each against the
// schema. It returns only errors of the reader; errors of the input are
// recorded.
func (imp *fhirImport) read(in *countingReader) error {
	limited := &io.LimitedReader{R: in, N: imp.opts.MaxBytes + 1}
	buf := bufio.NewReaderSize(limited, 64<<10)
	if _, ok := skipBOM(buf); !ok {
		imp.fatal("", "the Bundle is encoded as UTF-16 (or UTF-32), but FHIR JSON is UTF-8: send it as UTF-8")
		return nil
	}
	dec := json.NewDecoder(buf)
	dec.UseNumber()
	err := imp.decode(dec)
	if limited.N <= 0 {
		imp.report.Errors, imp.report.MoreErrors, imp.report.Invalid, imp.coll.fatal = nil, 0, 0, ""
		imp.fatal("", fmt.Sprintf("the Bundle is larger than %s: send the register in several smaller Bundles", byteSize(imp.opts.MaxBytes)))
		return nil
	}
	var syntax *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syntax):
		imp.fatal("", fmt.Sprintf("the JSON is broken at byte %d: %s", syntax.Offset, err))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		imp.fatal("", fmt.Sprintf("the JSON ends early, after %d bytes: the Bundle was probably cut off", in.n))
	case errors.Is(err, errNotBundle):
		// recorded
	default:
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			imp.fatal("", fmt.Sprintf("the JSON at byte %d is a %s where the Bundle needs another type", ute.Offset, ute.Value))
			return nil
		}
		return err
	}
	return nil
}

// byteSize writes a size for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// errNotBundle ends decoding of a body that is not a Bundle.
var errNotBundle = errors.New("register: not a bundle")

// decode walks the top-level object, handing each entry to addEntry as it
// comes and checking the rest of the Bundle at the end.
func (imp *fhirImport) decode(dec *json.Decoder) error {
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		imp.fatal("", "the body is not a JSON object: a FHIR Bundle starts with {")
		return errNotBundle
	}
	shell := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if key != "entry" {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return err
			}
			shell[key] = v
			continue
		}
		if err := imp.decodeEntries(dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		imp.fatal("", "there is more JSON after the Bundle: send one Bundle per request")
		return nil
	}
	imp.checkShell(shell)
	return nil
}

// decodeEntries reads the entry array.
func (imp *fhirImport) decodeEntries(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		imp.fatal("Bundle.entry", "Bundle.entry must be an array of entries")
		return errNotBundle
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		imp.addEntry(i, raw)
	}
	_, err = dec.Token()
	return err
}

// checkShell checks the Bundle without its entries.
func (imp *fhirImport) checkShell(shell map[string]json.RawMessage) {
	var typ string
	json.Unmarshal(shell["resourceType"], &typ)
	if typ != "Bundle" {
		if typ == "" {
			typ = "JSON object without a resourceType"
		}
		imp.fatal("", fmt.Sprintf("the body is a %s, but the register reads a FHIR Bundle of type transaction", typ))
		return
	}
	raw, _ := json.Marshal(shell)
	for _, p := range imp.validateRaw("Bundle", raw) {
		imp.errorAt(place{path: jsonPath("Bundle", p.path)}, "", "%s", p.msg)
	}
	var bt string
	json.Unmarshal(shell["type"], &bt)
	if bt != "transaction" {
		imp.errorAt(place{path: "Bundle.type"}, "", "the Bundle's type is %q: the register imports a transaction, all or nothing; set type to \"transaction\"", bt)
	}
}

// validateRaw checks JSON against a definition of the schema.
func (imp *fhirImport) validateRaw(def string, raw []byte) []schemaProblem {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []schemaProblem{{msg: "the JSON does not parse: " + err.Error()}}
	}
	return validate(imp.schemas[def], v)
}

// addEntry checks one entry against the schema and decodes it.
func (imp *fhirImport) addEntry(i int, raw json.RawMessage) {
	e := &fhirEntry{index: i}
	imp.entries = append(imp.entries, e)
	at := place{e, fmt.Sprintf("Bundle.entry[%d]", i)}
	if !utf8.Valid(raw) {
		imp.errorAt(at, "", "the entry is not UTF-8: save the Bundle as UTF-8")
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	m, ok := v.(map[string]any)
	if err != nil || !ok {
		imp.errorAt(at, "", "the entry is not a JSON object")
		return
	}
	res, _ := m["resource"].(map[string]any)
	delete(m, "resource")
	for _, p := range validate(imp.schemas["Bundle_Entry"], m) {
		imp.errorAt(place{e, jsonPath(at.path, p.path)}, "", "%s", p.msg)
	}
	if res == nil {
		imp.errorAt(at, "", "the entry has no resource")
		return
	}
	e.typ, _ = res["resourceType"].(string)
	if !isResourceType(imp.schemas, e.typ) {
		imp.errorAt(place{e, at.path + ".resource.resourceType"}, "", "%q is not a FHIR R4 resource type", e.typ)
		return
	}
	before := len(imp.report.Errors) + imp.report.MoreErrors
	for _, p := range validate(imp.schemas[e.typ], res) {
		imp.errorAt(place{e, jsonPath(at.path+".resource", p.path)}, "", "%s", p.msg)
	}
	if len(imp.report.Errors)+imp.report.MoreErrors > before {
		return
	}
	imp.decodeEntry(e, raw)
}

// decodeEntry decodes a schema-valid entry into the register's structs.
func (imp *fhirImport) decodeEntry(e *fhirEntry, raw json.RawMessage) {
	if err := json.Unmarshal(raw, &e.entry); err != nil {
		imp.errorAt(place{e, fmt.Sprintf("Bundle.entry[%d]", e.index)}, "", "the entry does not decode: %v", err)
		return
	}
	var head resourceHead
	json.Unmarshal(e.entry.Resource, &head)
	if len(head.ModifierExtension) > 0 {
		imp.errorAt(e.path(".modifierExtension"), "", "a modifierExtension changes the meaning of the resource in a way the register does not know: send the resource without it")
		return
	}
	var target any
	switch e.typ {
	case "Patient":
		e.patient = new(fhirPatient)
		target = e.patient
	case "ImagingStudy":
		e.study = new(fhirImagingStudy)
		target = e.study
	case "Observation":
		e.obs = new(fhirObservation)
		target = e.obs
	case "DiagnosticReport":
		e.report = new(fhirDiagnosticReport)
		target = e.report
	default:
		imp.errorAt(e.path(".resourceType"), "", "a %s is not part of the register: a register Bundle holds Patient, ImagingStudy, Observation and DiagnosticReport entries", e.typ)
		return
	}
	if err := json.Unmarshal(e.entry.Resource, target); err != nil {
		imp.errorAt(e.path(""), "", "the resource does not decode: %v", err)
	}
	e.entry.Resource = nil // decoded; keep memory to the structs
}

// link checks the entries together and builds the episodes: full URLs and
// requests, then each ImagingStudy with the Patient, Observations and
// DiagnosticReport that refer to it.
func (imp *fhirImport) link() {
	imp.byURL = make(map[string]*fhirEntry, len(imp.entries))
	for _, e := range imp.entries {
		imp.checkEntry(e)
		if e.patient != nil {
			imp.checkPatient(e)
		}
	}
	for _, e := range imp.entries {
		if e.study != nil {
			imp.addStudy(e)
		}
	}
	for _, e := range imp.entries {
		switch {
		case e.obs != nil:
			imp.addObservation(e)
		case e.report != nil:
			imp.addReport(e)
		}
	}
	seen := make(map[string]*draft)
	for _, d := range imp.drafts {
		imp.finishDraft(d, seen)
	}
}

// checkEntry checks an entry's full URL and request.
func (imp *fhirImport) checkEntry(e *fhirEntry) {
	at := place{e, fmt.Sprintf("Bundle.entry[%d].fullUrl", e.index)}
	switch url := e.entry.FullURL; {
	case url == "":
		imp.errorAt(at, "", "the entry has no fullUrl: give each entry a urn:uuid: full URL, by which the others refer to it")
	case !isUUIDURN(url):
		imp.errorAt(at, "", "the fullUrl %q is not a urn:uuid: (such as urn:uuid:9b3c1f5e-0c4d-4b8e-9a41-7d2f3c5e6a10)", url)
	case imp.byURL[url] != nil:
		imp.errorAt(at, "", "the fullUrl %s is also that of entry %d: each entry needs its own", url, imp.byURL[url].index)
	default:
		imp.byURL[url] = e
	}
	at.path = fmt.Sprintf("Bundle.entry[%d].request", e.index)
	if r := e.entry.Request; r == nil {
		imp.errorAt(at, "", "the entry has no request: every entry of a transaction needs one, with method PUT or POST")
	} else if r.Method != "PUT" && r.Method != "POST" {
		imp.errorAt(place{e, at.path + ".method"}, "", "the method %s is not an import: use PUT or POST", r.Method)
	}
}

// isUUIDURN reports whether s is urn:uuid: and a UUID in lower-case hex.
func isUUIDURN(s string) bool {
	u, ok := strings.CutPrefix(s, "urn:uuid:")
	if !ok || len(u) != 36 {
		return false
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// resolve finds the entry a reference points to, which must be of type
// want; it records an error and returns nil otherwise.
func (imp *fhirImport) resolve(ref *reference, at place, want string) *fhirEntry {
	switch {
	case ref == nil || ref.Reference == "":
		imp.errorAt(at, "", "the reference to the %s is missing: give the fullUrl of its entry (urn:uuid:…)", want)
	case imp.byURL[ref.Reference] == nil:
		imp.errorAt(place{at.entry, at.path + ".reference"}, "", "%s is not the fullUrl of any entry of this Bundle: a reference must point to an entry of the same Bundle", ref.Reference)
	case imp.byURL[ref.Reference].typ != want:
		imp.errorAt(place{at.entry, at.path + ".reference"}, "", "%s is a %s, but a %s belongs here", ref.Reference, imp.byURL[ref.Reference].typ, want)
	default:
		return imp.byURL[ref.Reference]
	}
	return nil
}

// sequence yields the episodes to the store.
func (imp *fhirImport) sequence() iter.Seq2[bildrum.ScreeningEpisode, error] {
	return func(yield func(bildrum.ScreeningEpisode, error) bool) {
		for _, e := range imp.episodes {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// draft is an episode being gathered from its entries: the values as CSV
// fields, so that it passes the same checks as a CSV row, and where each
// came from.
type draft struct {
	study        *fhirEntry
	subject      string // the Patient's fullUrl
	rec          [numColumns]string
	src          [numColumns]place
	observations map[string]*fhirEntry // by reading, or "density"
	report       *fhirEntry
}

// set records a value of a column and where it came from.
func (d *draft) set(col int, value string, at place) {
	d.rec[col], d.src[col] = value, at
}

// finishDraft checks the gathered episode as a CSV row is checked.
func (imp *fhirImport) finishDraft(d *draft, seen map[string]*draft) {
	imp.report.Rows++
	var p problems
	var e bildrum.ScreeningEpisode
	checkRaw(d.rec[:], &p)
	imp.check.parseRow(d.rec[:], &e, &p)
	if e.ID != "" {
		if first, ok := seen[e.ID]; ok {
			p.add(colID, "the episode id %s is also that of entry %d: give each invitation one ImagingStudy", e.ID, first.study.index)
		} else {
			seen[e.ID] = d
		}
	}
	if len(p.list) == 0 {
		imp.episodes = append(imp.episodes, e)
		return
	}
	imp.report.Invalid++
	slices.SortStableFunc(p.list, func(a, b problem) int { return a.col - b.col })
	for _, pr := range p.list {
		at, field := d.study.path(""), ""
		if pr.col >= 0 {
			field = columnNames[pr.col]
			if d.src[pr.col].entry != nil {
				at = d.src[pr.col]
			}
		}
		imp.errorAt(at, field, "%s", pr.msg)
	}
}

// addStudy starts the episode of an ImagingStudy: its id, the woman, the
// invitation and the examination.
func (imp *fhirImport) addStudy(e *fhirEntry) {
	s := e.study
	d := &draft{study: e, observations: map[string]*fhirEntry{}}
	e.draft = d
	imp.drafts = append(imp.drafts, d)
	for col := range d.src {
		d.src[col] = e.path("")
	}
	for _, col := range []int{colAttended, colTechnicalRepeat, colRecalled, colAdditionalImaging, colUltrasound, colNeedleBiopsy, colOpenBiopsy, colPreop} {
		d.rec[col] = "0"
	}
	d.src[colID] = e.path(".identifier")
	for i, id := range s.Identifier {
		if id.System == SystemEpisode {
			d.set(colID, id.Value, e.path(".identifier[%d].value", i))
		}
	}
	if d.rec[colID] == "" {
		imp.errorAt(e.path(".identifier"), "id", "the ImagingStudy needs an identifier with system %s whose value is the episode id", SystemEpisode)
	}
	imp.addSubject(d, e)
	if s.Location != nil && s.Location.Identifier != nil && s.Location.Identifier.System == SystemUnit {
		d.set(colUnit, s.Location.Identifier.Value, e.path(".location.identifier.value"))
	} else {
		d.src[colUnit] = e.path(".location")
	}
	imp.studyExtensions(d, e)
	imp.studyStatus(d, e)
	imp.studySeries(d, e)
}

// addSubject takes the woman's number from the Patient the study refers to.
func (imp *fhirImport) addSubject(d *draft, e *fhirEntry) {
	pat := imp.resolve(&e.study.Subject, e.path(".subject"), "Patient")
	if pat == nil {
		return
	}
	d.subject = e.study.Subject.Reference
	var found []int
	for i, id := range pat.patient.Identifier {
		if id.System == SystemPersonnummer || id.System == SystemSamordningsnummer {
			found = append(found, i)
		}
	}
	if len(found) != 1 {
		imp.errorAt(pat.path(".identifier"), "person_id", "the Patient needs exactly one identifier with system %s (personnummer) or %s (samordningsnummer)", SystemPersonnummer, SystemSamordningsnummer)
		return
	}
	id := pat.patient.Identifier[found[0]]
	d.set(colPerson, id.Value, pat.path(".identifier[%d].value", found[0]))
}

// checkPatient checks that a Patient's number has the system of its kind.
func (imp *fhirImport) checkPatient(e *fhirEntry) {
	for i, id := range e.patient.Identifier {
		if id.System != SystemPersonnummer && id.System != SystemSamordningsnummer {
			continue
		}
		if pid, err := bildrum.ParsePersonID(id.Value); err == nil && (id.System == SystemSamordningsnummer) != pid.IsCoordinationNumber() {
			imp.errorAt(e.path(".identifier[%d].system", i), "person_id", "%s is a %s, so its system is %s", id.Value, numberKind(pid), personSystem(pid))
		}
	}
}

func numberKind(id bildrum.PersonID) string {
	if id.IsCoordinationNumber() {
		return "samordningsnummer"
	}
	return "personnummer"
}

// studyExtensions reads the invitation from the study's extensions.
func (imp *fhirImport) studyExtensions(d *draft, e *fhirEntry) {
	for i, x := range e.study.Extension {
		at := e.path(".extension[%d]", i)
		switch x.URL {
		case extRegion:
			d.set(colRegion, x.ValueCode, e.path(".extension[%d].valueCode", i))
			imp.wantValue(at, x, x.ValueCode != "", "valueCode, the county code")
		case extRound:
			if imp.wantValue(at, x, x.ValuePositiveInt != nil, "valuePositiveInt, the round") {
				d.set(colRound, x.ValuePositiveInt.String(), e.path(".extension[%d].valuePositiveInt", i))
			}
		case extInvitationDate:
			d.set(colInvited, x.ValueDate, e.path(".extension[%d].valueDate", i))
			imp.wantValue(at, x, x.ValueDate != "", "valueDate, the day the invitation was sent")
		case extTechnicalRepeat:
			if imp.wantValue(at, x, x.ValueBoolean != nil, "valueBoolean") {
				d.set(colTechnicalRepeat, boolField(*x.ValueBoolean), e.path(".extension[%d].valueBoolean", i))
			}
		default:
			imp.unknownExtension(at, x.URL)
		}
	}
}

// wantValue records an error when an extension lacks the value it needs.
func (imp *fhirImport) wantValue(at place, x extension, ok bool, what string) bool {
	if !ok {
		imp.errorAt(at, "", "the extension %s needs %s", x.URL, what)
	}
	return ok
}

// unknownExtension rejects an extension under bildrum's base URL that the
// register does not define; other extensions are allowed and ignored.
func (imp *fhirImport) unknownExtension(at place, url string) {
	if strings.HasPrefix(url, structureDefinitionBase) {
		imp.errorAt(place{at.entry, at.path + ".url"}, "", "%s is not an extension of the register here: see docs/register.md for the ones it defines", url)
	}
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// studyStatus reads attendance and the exam date.
func (imp *fhirImport) studyStatus(d *draft, e *fhirEntry) {
	s := e.study
	switch s.Status {
	case "available":
		d.set(colAttended, "1", e.path(".status"))
	case "cancelled":
		d.set(colAttended, "0", e.path(".status"))
	default:
		imp.errorAt(e.path(".status"), "attended", "the status %q does not say whether she was examined: use available (examined) or cancelled (invited, not examined)", s.Status)
	}
	started := s.Started
	if len(started) > 10 && started[10] == 'T' {
		started = started[:10] // the day, as written, of a dateTime
	}
	d.set(colExamined, started, e.path(".started"))
	if !slices.ContainsFunc(s.Modality, sameCode(codeModalityMG)) {
		imp.errorAt(e.path(".modality"), "", "a screening examination has the modality MG (system %s)", systemDCM)
	}
}

// sameCode matches a coding by system and code.
func sameCode(want coding) func(coding) bool {
	return func(c coding) bool { return c.System == want.System && c.Code == want.Code }
}

// studySeries reads the views from the series.
func (imp *fhirImport) studySeries(d *draft, e *fhirEntry) {
	var views []string
	for i, s := range e.study.Series {
		if !sameCode(codeModalityMG)(s.Modality) {
			imp.errorAt(e.path(".series[%d].modality", i), "views", "a series of a screening examination has the modality MG (system %s)", systemDCM)
		}
		side := codeKey(lateralityCodes, s.Laterality)
		if side == "" {
			imp.errorAt(e.path(".series[%d].laterality", i), "views", "the laterality must be SNOMED CT 24028007 (right) or 7771000 (left)")
		}
		view := ""
		for j, x := range s.Extension {
			if x.URL == extView {
				if view = codeKey(viewCodes, x.ValueCoding); view == "" {
					imp.errorAt(e.path(".series[%d].extension[%d].valueCoding", i, j), "views", "the view must be SNOMED CT 399162004 (cranio-caudal) or 399368009 (medio-lateral oblique)")
				}
			} else {
				imp.unknownExtension(e.path(".series[%d].extension[%d]", i, j), x.URL)
			}
		}
		if view == "" {
			imp.errorAt(e.path(".series[%d].extension", i), "views", "the series needs the extension %s with its view", extView)
		}
		views = append(views, side+view)
	}
	d.set(colViews, strings.Join(views, "+"), e.path(".series"))
}

// codeKey finds the key of a coding in a table of codings by system and
// code, or "".
func codeKey[K comparable](table map[K]coding, c *coding) K {
	var zero K
	if c == nil {
		return zero
	}
	for k, v := range table {
		if v.System == c.System && v.Code == c.Code {
			return k
		}
	}
	return zero
}

// studyOf resolves the ImagingStudy an Observation or DiagnosticReport
// belongs to: exactly one of refs must point to one.
func (imp *fhirImport) studyOf(e *fhirEntry, refs []reference, element string, subject *reference) *draft {
	var found *fhirEntry
	for i := range refs {
		if s := imp.resolve(&refs[i], e.path(".%s[%d]", element, i), "ImagingStudy"); s != nil {
			if found != nil {
				imp.errorAt(e.path(".%s[%d]", element, i), "", "the %s refers to two ImagingStudy entries: it belongs to one episode", e.typ)
				return nil
			}
			found = s
		}
	}
	if found == nil {
		if len(refs) == 0 {
			imp.errorAt(e.path(".%s", element), "", "the %s needs %s referring to its episode's ImagingStudy", e.typ, element)
		}
		return nil
	}
	e.linked = true
	if subject == nil || subject.Reference != found.study.Subject.Reference {
		imp.errorAt(e.path(".subject"), "person_id", "the %s's subject must be the Patient of its ImagingStudy (%s)", e.typ, found.study.Subject.Reference)
	}
	return found.draft
}

// addObservation adds a reading or the density to its episode.
func (imp *fhirImport) addObservation(e *fhirEntry) {
	o := e.obs
	d := imp.studyOf(e, o.DerivedFrom, "derivedFrom", o.Subject)
	if d == nil {
		return
	}
	if o.Status != "final" && o.Status != "amended" && o.Status != "corrected" {
		imp.errorAt(e.path(".status"), "", "the status %q is not a result for the register: use final (or amended, corrected)", o.Status)
	}
	var kind string
	var col int
	var value string
	switch {
	case slices.ContainsFunc(o.Code.Coding, sameCode(codeAssessment)):
		kind = imp.readingOf(e)
		if kind == "" {
			return
		}
		col = readingColumns[kind]
		value = string(codeKey(biradsCodes, firstCoding(o.ValueCodeableConcept)))
		if value == "" {
			imp.errorAt(e.path(".valueCodeableConcept"), columnNames[col], "the value must be the SNOMED CT code of a BI-RADS category, 397138000 (0) to 397145000 (5) or 6111000179101 (6)")
			return
		}
	case slices.ContainsFunc(o.Code.Coding, sameCode(codeComposition)):
		kind, col = "density", colDensity
		value = string(codeKey(densityCodes, firstCoding(o.ValueCodeableConcept)))
		if value == "" {
			imp.errorAt(e.path(".valueCodeableConcept"), "density", "the value must be the SNOMED CT code of a breast composition: 129716005 (a), 129717001 (b), 129718006 (c) or 129719003 (d)")
			return
		}
	default:
		imp.errorAt(e.path(".code"), "", "the code is neither DICOM %s (a BI-RADS assessment) nor SNOMED CT %s (breast composition)", codeAssessment.Code, codeComposition.Code)
		return
	}
	if other := d.observations[kind]; other != nil {
		imp.errorAt(e.path(""), columnNames[col], "the episode already has this Observation in entry %d: give each reading once", other.index)
		return
	}
	d.observations[kind] = e
	d.set(col, value, e.path(".valueCodeableConcept"))
}

// readingOf returns the reading an assessment Observation records, from
// its method.
func (imp *fhirImport) readingOf(e *fhirEntry) string {
	c := firstCoding(e.obs.Method)
	if c != nil && c.System == codeSystemReading {
		if _, ok := readingColumns[c.Code]; ok {
			return c.Code
		}
	}
	imp.errorAt(e.path(".method"), "", "a BI-RADS Observation needs the method %s with code reader-1, reader-2, consensus or assessment", codeSystemReading)
	return ""
}

// firstCoding returns the first coding of a concept, or nil.
func firstCoding(c *codeableConcept) *coding {
	if c == nil || len(c.Coding) == 0 {
		return nil
	}
	return &c.Coding[0]
}

// addReport adds the screening report: result, assessment and diagnosis.
func (imp *fhirImport) addReport(e *fhirEntry) {
	r := e.report
	d := imp.studyOf(e, r.ImagingStudy, "imagingStudy", r.Subject)
	if d == nil {
		return
	}
	if !slices.ContainsFunc(r.Code.Coding, sameCode(codeScreeningReport)) {
		imp.errorAt(e.path(".code"), "", "the DiagnosticReport's code must be LOINC %s (%s)", codeScreeningReport.Code, codeScreeningReport.Display)
		return
	}
	if d.report != nil {
		imp.errorAt(e.path(""), "", "the episode already has its DiagnosticReport in entry %d: give it one", d.report.index)
		return
	}
	d.report = e
	for i := range r.Result {
		if o := imp.resolve(&r.Result[i], e.path(".result[%d]", i), "Observation"); o != nil && o.linked && !d.has(o) {
			imp.errorAt(e.path(".result[%d]", i), "", "the Observation %s is not derived from this report's ImagingStudy", r.Result[i].Reference)
		}
	}
	imp.reportConclusions(d, e)
	imp.reportExtensions(d, e)
}

// has reports whether the Observation belongs to the episode.
func (d *draft) has(o *fhirEntry) bool {
	for _, v := range d.observations {
		if v == o {
			return true
		}
	}
	return false
}

// reportConclusions reads the recall and the outcome.
func (imp *fhirImport) reportConclusions(d *draft, e *fhirEntry) {
	d.src[colRecalled], d.src[colOutcome] = e.path(".conclusionCode"), e.path(".conclusionCode")
	for i, cc := range e.report.ConclusionCode {
		for j, c := range cc.Coding {
			at := e.path(".conclusionCode[%d].coding[%d].code", i, j)
			switch c.System {
			case codeSystemScreenResult:
				switch c.Code {
				case "recall":
					d.set(colRecalled, "1", at)
				case "no-recall":
					d.set(colRecalled, "0", at)
				default:
					imp.errorAt(at, "recalled", "%q is not a screening result: use recall or no-recall", c.Code)
				}
			case codeSystemOutcome:
				d.set(colOutcome, c.Code, at)
			}
		}
	}
}

// reportExtensionColumns say which column a DiagnosticReport extension
// fills, and from which value[x].
var reportExtensionColumns = map[string]struct {
	col     int
	element string
}{
	extResultDate:     {colResultDay, "valueDate"},
	extAssessmentDate: {colAssessed, "valueDate"},
	extDetection:      {colDetection, "valueCode"},
	extDiagnosisDate:  {colDiagnosed, "valueDate"},
	extTumourSize:     {colTumourSize, "valueQuantity"},
	extNodalStatus:    {colNodalStatus, "valueCode"},
	extStage:          {colStage, "valueCode"},
	extPreop:          {colPreop, "valueBoolean"},
	extIntervalMonths: {colIntervalMonths, "valueInteger"},
}

// reportExtensions reads the result date, the assessment and the diagnosis.
func (imp *fhirImport) reportExtensions(d *draft, e *fhirEntry) {
	for i, x := range e.report.Extension {
		at := e.path(".extension[%d]", i)
		if x.URL == extAssessmentProcedure {
			col, ok := assessmentProcedures[x.ValueCode]
			if !ok {
				imp.errorAt(place{e, at.path + ".valueCode"}, "", "%q is not an assessment procedure: use additional-imaging, ultrasound, needle-biopsy or open-surgical-biopsy", x.ValueCode)
				continue
			}
			d.set(col, "1", place{e, at.path + ".valueCode"})
			continue
		}
		want, ok := reportExtensionColumns[x.URL]
		if !ok {
			imp.unknownExtension(at, x.URL)
			continue
		}
		value, ok := extensionValue(x, want.element)
		if !ok {
			imp.errorAt(at, columnNames[want.col], "the extension %s needs %s", x.URL, want.element)
			continue
		}
		d.set(want.col, value, place{e, at.path + "." + want.element})
		if x.URL == extTumourSize && (x.ValueQuantity.System != systemUCUM || x.ValueQuantity.Code != "mm") {
			imp.errorAt(place{e, at.path + ".valueQuantity"}, "tumour_size_mm", "the tumour size is in millimetres: system %s, code mm", systemUCUM)
		}
	}
}

// extensionValue returns an extension's value[x] of the named element as a
// CSV field, and whether it has one.
func extensionValue(x extension, element string) (string, bool) {
	switch element {
	case "valueDate":
		return x.ValueDate, x.ValueDate != ""
	case "valueCode":
		return x.ValueCode, x.ValueCode != ""
	case "valueBoolean":
		if x.ValueBoolean != nil {
			return boolField(*x.ValueBoolean), true
		}
	case "valueInteger":
		if x.ValueInteger != nil {
			return x.ValueInteger.String(), true
		}
	case "valueQuantity":
		if x.ValueQuantity != nil {
			return x.ValueQuantity.Value.String(), true
		}
	}
	return "", false
}
