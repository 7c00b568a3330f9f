package dicomweb

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/problem"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// queryKey is how a QIDO-RS matching key fills an ImageQuery.
type queryKey func(q *bildrum.ImageQuery, value string) error

var (
	datePattern = regexp.MustCompile(`^\d{8}$`)
	timePattern = regexp.MustCompile(`^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$`)
)

func text(set func(q *bildrum.ImageQuery, v string)) queryKey {
	return func(q *bildrum.ImageQuery, v string) error { set(q, v); return nil }
}

func uids(set func(q *bildrum.ImageQuery, v []string)) queryKey {
	return func(q *bildrum.ImageQuery, v string) error {
		list := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\\' })
		for _, u := range list {
			if strings.ContainsAny(u, "*?") || len(u) > 64 {
				return bildrum.Errorf(bildrum.EINVALID, "UID %q: UIDs are matched exactly, as a list separated by commas, without wildcards", u)
			}
		}
		set(q, list)
		return nil
	}
}

func codes(set func(q *bildrum.ImageQuery, v []string)) queryKey {
	return func(q *bildrum.ImageQuery, v string) error {
		set(q, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == '\\' }))
		return nil
	}
}

// dateRange parses a DA or TM value or range (PS3.4 C.2.2.2.5).
func dateRange(pattern *regexp.Regexp, what string, set func(q *bildrum.ImageQuery, r bildrum.Range)) queryKey {
	return func(q *bildrum.ImageQuery, v string) error {
		from, to, isRange := strings.Cut(v, "-")
		if !isRange {
			to = from
		}
		for _, s := range []string{from, to} {
			if s != "" && !pattern.MatchString(s) {
				return bildrum.Errorf(bildrum.EINVALID, "%s %q: write %s, or a range FROM-TO with either end open", what, v, map[string]string{"date": "YYYYMMDD", "time": "HHMMSS"}[what])
			}
		}
		if from == "" && to == "" {
			return bildrum.Errorf(bildrum.EINVALID, "%s range %q has neither end", what, v)
		}
		set(q, bildrum.Range{From: from, To: to})
		return nil
	}
}

// queryKeys are the matching keys this server supports, by keyword (PS3.18
// §10.6.1.2, Tables 10.6.1-5 to -7).
var queryKeys = map[string]queryKey{
	"PatientID":              text(func(q *bildrum.ImageQuery, v string) { q.PatientID = v }),
	"PatientName":            text(func(q *bildrum.ImageQuery, v string) { q.PatientName = v }),
	"PatientBirthDate":       dateRange(datePattern, "date", func(q *bildrum.ImageQuery, r bildrum.Range) { q.PatientBirthDate = r }),
	"StudyInstanceUID":       uids(func(q *bildrum.ImageQuery, v []string) { q.StudyInstanceUIDs = append(q.StudyInstanceUIDs, v...) }),
	"StudyDate":              dateRange(datePattern, "date", func(q *bildrum.ImageQuery, r bildrum.Range) { q.StudyDate = r }),
	"StudyTime":              dateRange(timePattern, "time", func(q *bildrum.ImageQuery, r bildrum.Range) { q.StudyTime = r }),
	"AccessionNumber":        text(func(q *bildrum.ImageQuery, v string) { q.AccessionNumber = v }),
	"StudyID":                text(func(q *bildrum.ImageQuery, v string) { q.StudyID = v }),
	"StudyDescription":       text(func(q *bildrum.ImageQuery, v string) { q.StudyDescription = v }),
	"ReferringPhysicianName": text(func(q *bildrum.ImageQuery, v string) { q.ReferringPhysicianName = v }),
	"ModalitiesInStudy":      codes(func(q *bildrum.ImageQuery, v []string) { q.ModalitiesInStudy = v }),
	"SeriesInstanceUID":      uids(func(q *bildrum.ImageQuery, v []string) { q.SeriesInstanceUIDs = append(q.SeriesInstanceUIDs, v...) }),
	"Modality":               codes(func(q *bildrum.ImageQuery, v []string) { q.Modalities = v }),
	"SeriesNumber":           text(func(q *bildrum.ImageQuery, v string) { q.SeriesNumber = v }),
	"SOPInstanceUID":         uids(func(q *bildrum.ImageQuery, v []string) { q.SOPInstanceUIDs = append(q.SOPInstanceUIDs, v...) }),
	"SOPClassUID":            uids(func(q *bildrum.ImageQuery, v []string) { q.SOPClassUIDs = append(q.SOPClassUIDs, v...) }),
	"InstanceNumber":         text(func(q *bildrum.ImageQuery, v string) { q.InstanceNumber = v }),
}

// keyword returns the keyword of a query parameter naming an attribute by
// keyword or by tag (GGGGEEEE), or "" if it names none.
func keyword(param string) string {
	if len(param) == 8 {
		if n, err := strconv.ParseUint(param, 16, 32); err == nil {
			if info, err := tag.Find(tag.Tag{Group: uint16(n >> 16), Element: uint16(n)}); err == nil {
				return info.Keyword
			}
			return ""
		}
	}
	if _, err := tag.FindByKeyword(param); err == nil {
		return param
	}
	return ""
}

// parseQuery turns QIDO-RS query parameters (PS3.18 §8.3.4) into a query,
// and collects warnings for what was ignored.
func parseQuery(values url.Values) (bildrum.ImageQuery, []string, error) {
	var q bildrum.ImageQuery
	var warnings []string
	for param, vals := range values {
		v := vals[len(vals)-1]
		switch param {
		case "limit", "offset":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return q, nil, bildrum.Errorf(bildrum.EINVALID, "%s=%q: give a whole number of 0 or more", param, v)
			}
			if param == "limit" {
				q.Limit = n
				if n == 0 || n > bildrum.MaxQueryLimit {
					q.Limit = bildrum.MaxQueryLimit
				}
			} else {
				q.Offset = n
			}
			continue
		case "fuzzymatching":
			switch v {
			case "false", "":
			case "true":
				warnings = append(warnings, "the fuzzymatching parameter is not supported: only literal matching has been performed")
			default:
				return q, nil, bildrum.Errorf(bildrum.EINVALID, "fuzzymatching=%q: give true or false", v)
			}
			continue
		case "includefield":
			// Every attribute the index holds is returned whatever
			// includefield asks (docs/dicom-conformance.md); check only
			// that it names attributes.
			for _, val := range vals {
				for _, f := range strings.Split(val, ",") {
					if f != "all" && keyword(f) == "" && !strings.Contains(f, ".") {
						return q, nil, bildrum.Errorf(bildrum.EINVALID, "includefield=%q: name attributes by keyword or tag (GGGGEEEE), or all", f)
					}
				}
			}
			continue
		}
		kw := keyword(param)
		if kw == "" {
			return q, nil, bildrum.Errorf(bildrum.EINVALID, "query parameter %q is neither a DICOM attribute (keyword or GGGGEEEE) nor one of limit, offset, fuzzymatching, includefield (PS3.18 §8.3.4)", param)
		}
		key, ok := queryKeys[kw]
		if !ok {
			if v != "" {
				warnings = append(warnings, fmt.Sprintf("the attribute %s is not supported for matching and was ignored", kw))
			}
			continue
		}
		if err := key(&q, v); err != nil {
			return q, nil, err
		}
	}
	return q, warnings, nil
}

// acceptsJSON checks the Accept header of a QIDO-RS or metadata request.
func acceptsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return true
	}
	for _, a := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(a))
		if err != nil {
			continue
		}
		switch mt {
		case MediaDICOMJSON, "application/json", "*/*", "application/*":
			return true
		}
	}
	return false
}

func (s *Server) startSearch(w http.ResponseWriter, r *http.Request) (bildrum.ImageQuery, bool) {
	if !acceptsJSON(r) {
		problem.Write(w, r, http.StatusNotAcceptable, bildrum.EINVALID, fmt.Sprintf("Accept %q: this server answers searches in application/dicom+json only", r.Header.Get("Accept")))
		return bildrum.ImageQuery{}, false
	}
	q, warnings, err := parseQuery(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return q, false
	}
	if study := r.PathValue("study"); study != "" {
		q.StudyInstanceUIDs = []string{study}
	}
	if series := r.PathValue("series"); series != "" {
		q.SeriesInstanceUIDs = []string{series}
	}
	for _, msg := range warnings {
		w.Header().Add("Warning", fmt.Sprintf("299 bildrum %q", msg))
	}
	return q, true
}

// answerSearch records the search for the persons found and writes the
// matches.
func (s *Server) answerSearch(w http.ResponseWriter, r *http.Request, results []archive.Object, more bool, patients []string) {
	if err := s.record(r.Context(), bildrum.AccessImageSearch, "QIDO-RS "+r.URL.Path, patients...); err != nil {
		s.fail(w, r, err)
		return
	}
	if more {
		w.Header().Add("Warning", `299 bildrum "there are more matches than were returned: ask again with a larger offset"`)
	}
	if results == nil {
		results = []archive.Object{}
	}
	w.Header().Set("Content-Type", MediaDICOMJSON)
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(results)
}

// searchStudies answers QIDO-RS for studies (PS3.18 §10.6.1).
func (s *Server) searchStudies(w http.ResponseWriter, r *http.Request) {
	q, ok := s.startSearch(w, r)
	if !ok {
		return
	}
	studies, more, err := s.cfg.Archive.Index().SearchStudies(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	base := s.baseURL(r)
	out := make([]archive.Object, len(studies))
	patients := make([]string, len(studies))
	for i := range studies {
		out[i] = archive.StudyJSON(&studies[i], base+"/studies/"+studies[i].StudyInstanceUID)
		patients[i] = studies[i].Patient.ID
	}
	s.answerSearch(w, r, out, more, patients)
}

// searchSeries answers QIDO-RS for series, of all studies or of one.
func (s *Server) searchSeries(w http.ResponseWriter, r *http.Request) {
	q, ok := s.startSearch(w, r)
	if !ok {
		return
	}
	series, more, err := s.cfg.Archive.Index().SearchSeries(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	base := s.baseURL(r)
	out := make([]archive.Object, len(series))
	patients := make([]string, len(series))
	for i := range series {
		m := &series[i]
		studyURL := base + "/studies/" + m.Study.StudyInstanceUID
		out[i] = archive.SeriesJSON(&m.Series, m.Study.StudyInstanceUID, studyURL+"/series/"+m.Series.SeriesInstanceUID).
			Merge(archive.StudyJSON(&m.Study, studyURL))
		patients[i] = m.Study.Patient.ID
	}
	s.answerSearch(w, r, out, more, patients)
}

// searchInstances answers QIDO-RS for instances, of all studies, of one
// study or of one series.
func (s *Server) searchInstances(w http.ResponseWriter, r *http.Request) {
	q, ok := s.startSearch(w, r)
	if !ok {
		return
	}
	instances, more, err := s.cfg.Archive.Index().SearchInstances(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	base := s.baseURL(r)
	out := make([]archive.Object, len(instances))
	patients := make([]string, len(instances))
	for i := range instances {
		in := &instances[i]
		studyURL := base + "/studies/" + in.Study.StudyInstanceUID
		seriesURL := studyURL + "/series/" + in.Series.SeriesInstanceUID
		out[i] = archive.InstanceJSON(in, instanceURL(base, in)).
			Merge(archive.SeriesJSON(&in.Series, in.Study.StudyInstanceUID, seriesURL), archive.StudyJSON(&in.Study, studyURL))
		patients[i] = in.Study.Patient.ID
	}
	s.answerSearch(w, r, out, more, patients)
}
