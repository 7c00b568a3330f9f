package archive

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Attr is an attribute of the DICOM JSON model (PS3.18 §F.2.2).
type Attr struct {
	VR           string `json:"vr"`
	Value        []any  `json:"Value,omitempty"`
	BulkDataURI  string `json:"BulkDataURI,omitempty"`
	InlineBinary string `json:"InlineBinary,omitempty"`
}

// Object is a data set in the DICOM JSON model: attributes by their tag
// as eight upper-case hex digits, GGGGEEEE. encoding/json writes the keys
// sorted, which is the attributes' order in DICOM.
type Object map[string]Attr

// PersonName is a PN value in the DICOM JSON model (PS3.18 §F.2.2).
type PersonName struct {
	Alphabetic  string `json:"Alphabetic,omitempty"`
	Ideographic string `json:"Ideographic,omitempty"`
	Phonetic    string `json:"Phonetic,omitempty"`
}

// Key returns the JSON key of a tag.
func Key(t tag.Tag) string { return fmt.Sprintf("%04X%04X", t.Group, t.Element) }

// MaxInlineBinary is the largest binary value (other than pixel data) that
// metadata carry inline, base64-encoded; larger ones are left out.
const MaxInlineBinary = 64 << 10

// Metadata returns the data set of h in the DICOM JSON model, without the
// file meta information. Pixel Data is given as a BulkDataURI, pixelURI,
// when that is not empty; other binary values inline up to
// MaxInlineBinary bytes.
func Metadata(h *Header, pixelURI string) Object {
	obj := elementsJSON(h.Dataset.Elements, true)
	if h.Pixel != nil && pixelURI != "" {
		vr := h.Pixel.VR
		if vr != "OB" && vr != "OW" {
			vr = "OW"
		}
		obj[Key(tag.PixelData)] = Attr{VR: vr, BulkDataURI: pixelURI}
	}
	return obj
}

func elementsJSON(elems []*dicom.Element, top bool) Object {
	obj := Object{}
	for _, e := range elems {
		if (top && e.Tag.Group == 0x0002) || e.Tag.Element == 0x0000 || e.Tag == tag.PixelData {
			continue
		}
		if a, ok := attrOf(e); ok {
			obj[Key(e.Tag)] = a
		}
	}
	return obj
}

// attrOf converts one element, or reports false when it is left out.
func attrOf(e *dicom.Element) (Attr, bool) {
	vr := e.RawValueRepresentation
	if len(vr) != 2 {
		vr = "UN"
		if info, err := tag.Find(e.Tag); err == nil && len(info.VRs) > 0 && len(info.VRs[0]) == 2 {
			vr = info.VRs[0]
		}
	}
	a := Attr{VR: vr}
	if e.Value == nil {
		return a, true
	}
	switch v := e.Value.GetValue().(type) {
	case []string:
		a.Value = stringValues(vr, v)
	case []int:
		if vr == "AT" {
			for i := 0; i+1 < len(v); i += 2 {
				a.Value = append(a.Value, fmt.Sprintf("%04X%04X", v[i], v[i+1]))
			}
		} else {
			for _, n := range v {
				a.Value = append(a.Value, n)
			}
		}
	case []float64:
		for _, f := range v {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				a.Value = append(a.Value, nil)
			} else {
				a.Value = append(a.Value, f)
			}
		}
	case []byte:
		if len(v) > MaxInlineBinary {
			return a, false
		}
		if len(v) > 0 {
			a.InlineBinary = base64.StdEncoding.EncodeToString(v)
		}
	case []*dicom.SequenceItemValue:
		a.VR = "SQ"
		for _, item := range v {
			elems, _ := item.GetValue().([]*dicom.Element)
			a.Value = append(a.Value, elementsJSON(elems, false))
		}
	default:
		return a, false // pixel data inside sequences (icons) are skipped
	}
	return a, true
}

// stringValues converts the text values of an element of VR vr.
func stringValues(vr string, v []string) []any {
	switch vr {
	case "LT", "ST", "UT", "UR":
		// Single-valued: a backslash is text, not a separator.
		s := strings.TrimRight(strings.Join(v, `\`), " \x00")
		if s == "" {
			return nil
		}
		return []any{s}
	}
	if len(v) == 1 && strings.TrimSpace(v[0]) == "" {
		return nil
	}
	out := make([]any, 0, len(v))
	for _, s := range v {
		s = strings.Trim(s, " \x00")
		switch vr {
		case "IS":
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				out = append(out, n)
			} else {
				out = append(out, nil)
			}
		case "DS":
			if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				out = append(out, f)
			} else {
				out = append(out, nil)
			}
		case "PN":
			out = append(out, personName(s))
		default:
			if s == "" {
				out = append(out, nil)
			} else {
				out = append(out, s)
			}
		}
	}
	return out
}

func personName(s string) any {
	if s == "" {
		return nil
	}
	groups := strings.SplitN(s, "=", 3)
	pn := PersonName{Alphabetic: groups[0]}
	if len(groups) > 1 {
		pn.Ideographic = groups[1]
	}
	if len(groups) > 2 {
		pn.Phonetic = groups[2]
	}
	return pn
}

// Tags of the attributes that QIDO-RS returns from the index (PS3.18
// §10.6.3.3), by level.
var (
	tagInstanceAvailability       = tag.Tag{Group: 0x0008, Element: 0x0056}
	tagRetrieveURL                = tag.Tag{Group: 0x0008, Element: 0x1190}
	tagNumberOfStudyRelatedSeries = tag.Tag{Group: 0x0020, Element: 0x1206}
	tagNumberOfStudyRelatedInst   = tag.Tag{Group: 0x0020, Element: 0x1208}
	tagNumberOfSeriesRelatedInst  = tag.Tag{Group: 0x0020, Element: 0x1209}
)

func str(obj Object, t tag.Tag, vr, v string) {
	if v == "" {
		obj[Key(t)] = Attr{VR: vr}
		return
	}
	if vr == "PN" {
		obj[Key(t)] = Attr{VR: vr, Value: []any{personName(v)}}
		return
	}
	obj[Key(t)] = Attr{VR: vr, Value: stringValues(vr, strings.Split(v, `\`))}
}

func num(obj Object, t tag.Tag, vr string, n int) {
	obj[Key(t)] = Attr{VR: vr, Value: []any{n}}
}

// StudyJSON returns the study-level attributes of a study, with its
// Retrieve URL.
func StudyJSON(s *bildrum.Study, retrieveURL string) Object {
	obj := Object{}
	str(obj, tag.SpecificCharacterSet, "CS", "ISO_IR 192")
	str(obj, tag.StudyDate, "DA", s.StudyDate)
	str(obj, tag.StudyTime, "TM", s.StudyTime)
	str(obj, tag.AccessionNumber, "SH", s.AccessionNumber)
	str(obj, tagInstanceAvailability, "CS", "ONLINE")
	str(obj, tag.ModalitiesInStudy, "CS", strings.Join(s.ModalitiesInStudy, `\`))
	str(obj, tag.ReferringPhysicianName, "PN", s.ReferringPhysicianName)
	str(obj, tag.StudyDescription, "LO", s.StudyDescription)
	str(obj, tagRetrieveURL, "UR", retrieveURL)
	str(obj, tag.PatientName, "PN", s.Patient.Name)
	str(obj, tag.PatientID, "LO", s.Patient.ID)
	str(obj, tag.PatientBirthDate, "DA", s.Patient.BirthDate)
	str(obj, tag.PatientSex, "CS", s.Patient.Sex)
	str(obj, tag.StudyInstanceUID, "UI", s.StudyInstanceUID)
	str(obj, tag.StudyID, "SH", s.StudyID)
	num(obj, tagNumberOfStudyRelatedSeries, "IS", s.NumberOfSeries)
	num(obj, tagNumberOfStudyRelatedInst, "IS", s.NumberOfInstances)
	return obj
}

// SeriesJSON returns the series-level attributes of a series, with its
// Retrieve URL.
func SeriesJSON(s *bildrum.Series, studyUID, retrieveURL string) Object {
	obj := Object{}
	str(obj, tag.SpecificCharacterSet, "CS", "ISO_IR 192")
	str(obj, tag.Modality, "CS", s.Modality)
	str(obj, tag.SeriesDescription, "LO", s.SeriesDescription)
	str(obj, tag.BodyPartExamined, "CS", s.BodyPartExamined)
	str(obj, tagRetrieveURL, "UR", retrieveURL)
	str(obj, tag.StudyInstanceUID, "UI", studyUID)
	str(obj, tag.SeriesInstanceUID, "UI", s.SeriesInstanceUID)
	str(obj, tag.SeriesNumber, "IS", s.SeriesNumber)
	num(obj, tagNumberOfSeriesRelatedInst, "IS", s.NumberOfInstances)
	return obj
}

// InstanceJSON returns the instance-level attributes of an instance, with
// its Retrieve URL.
func InstanceJSON(in *bildrum.Instance, retrieveURL string) Object {
	obj := Object{}
	str(obj, tag.SpecificCharacterSet, "CS", "ISO_IR 192")
	str(obj, tag.SOPClassUID, "UI", in.SOPClassUID)
	str(obj, tag.SOPInstanceUID, "UI", in.SOPInstanceUID)
	str(obj, tagInstanceAvailability, "CS", "ONLINE")
	str(obj, tagRetrieveURL, "UR", retrieveURL)
	str(obj, tag.StudyInstanceUID, "UI", in.Study.StudyInstanceUID)
	str(obj, tag.SeriesInstanceUID, "UI", in.Series.SeriesInstanceUID)
	str(obj, tag.InstanceNumber, "IS", in.InstanceNumber)
	str(obj, tag.ImageLaterality, "CS", in.ImageLaterality)
	str(obj, tag.ViewPosition, "CS", in.ViewPosition)
	str(obj, tag.AvailableTransferSyntaxUID, "UI", in.TransferSyntaxUID)
	if in.Rows > 0 {
		num(obj, tag.Rows, "US", in.Rows)
		num(obj, tag.Columns, "US", in.Columns)
		num(obj, tag.BitsAllocated, "US", in.BitsAllocated)
	}
	if in.NumberOfFrames > 0 {
		num(obj, tag.NumberOfFrames, "IS", in.NumberOfFrames)
	}
	return obj
}

// Merge adds the attributes of others to obj, keeping obj's.
func (obj Object) Merge(others ...Object) Object {
	for _, o := range others {
		for k, v := range o {
			if _, ok := obj[k]; !ok {
				obj[k] = v
			}
		}
	}
	return obj
}

// String returns the first value of a text attribute of obj (of a PN, its
// alphabetic group), or "".
func (obj Object) String(key string) string {
	if v := obj[key].Value; len(v) > 0 {
		switch x := v[0].(type) {
		case string:
			return x
		case PersonName:
			return x.Alphabetic
		case map[string]any:
			s, _ := x["Alphabetic"].(string)
			return s
		}
	}
	return ""
}

// Items returns the items of a sequence attribute of obj, whether built
// here or decoded from JSON.
func (obj Object) Items(key string) []Object {
	var out []Object
	for _, v := range obj[key].Value {
		switch x := v.(type) {
		case Object:
			out = append(out, x)
		case map[string]any:
			b, _ := json.Marshal(x)
			var item Object
			if json.Unmarshal(b, &item) == nil {
				out = append(out, item)
			}
		}
	}
	return out
}
