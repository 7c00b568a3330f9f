package synth

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/bildrum/bildrum"
)

// Coded concepts of the images (PS3.16).
var (
	// CID 4014 View for Mammography.
	codeCC  = code{"399162004", "SCT", "cranio-caudal"}
	codeMLO = code{"399368009", "SCT", "medio-lateral oblique"}
	// CID 4013 Anatomic Target Region for Mammography.
	codeBreast = code{"76752008", "SCT", "Breast"}
	// The procedure: LOINC's bilateral screening mammogram.
	codeScreening = code{"24606-6", "LN", "MG Breast Screening"}
)

// issuerPersonnummer and issuerSamordningsnummer are the OIDs of the Swedish
// personal identity and coordination numbers, the issuers of PatientID.
const (
	issuerPersonnummer      = "1.2.752.129.2.1.3.1"
	issuerSamordningsnummer = "1.2.752.129.2.1.3.3"
)

// code is a coded concept: value, scheme designator, meaning.
type code struct{ value, scheme, meaning string }

// item returns the code as the attributes of a code sequence item.
func (c code) item() *elements {
	var it elements
	it.add(tag.CodeValue, c.value)
	it.add(tag.CodingSchemeDesignator, c.scheme)
	it.add(tag.CodeMeaning, c.meaning)
	return &it
}

// patientOrientation is Patient Orientation (0020,0020) of each view
// (PS3.3 C.8.11.7.1.1 and PS3.17 Annex Q): the direction of the rows, from
// the image's left to right, and of the columns, from top to bottom. Left
// breasts have the chest wall at the left, so rows run anterior (to the
// nipple); CC views have the lateral side up, MLO views the axilla up.
var patientOrientation = map[string][]string{
	bildrum.ViewRCC:  {"P", "L"},
	bildrum.ViewLCC:  {"A", "R"},
	bildrum.ViewRMLO: {"P", "FL"},
	bildrum.ViewLMLO: {"A", "FR"},
}

// The acquisition geometry of the synthetic system, mm.
const (
	sourceToDetectorMM = 660
	sourceToSupportMM  = 640 // the breast support, DistanceSourceToPatient
)

// headerRoom is the space kept in front of the pixels for the file's
// preamble, meta information and data set up to Pixel Data (about 3 KB).
const headerRoom = 16 << 10

// encodeMammogram writes one view as a DICOM PS3.10 file of the Digital
// Mammography X-Ray Image IOD (PS3.3 A.26.2) and returns it. buf holds the
// pixels (vp.data) from headerRoom on.
//
// suyashkumar/dicom writes the preamble, the meta information and every
// element but Pixel Data. That one we write ourselves, a 12-byte header
// (PS3.5 §7.1.2: tag, "OW", two reserved bytes, 32-bit length) in front of
// pixels drawn in place: the library stages each value in a buffer of its
// own and its frame writer encodes pixel by pixel through encoding/binary,
// which for 27 MB of pixels took more time and memory than drawing them.
func encodeMammogram(buf []byte, ex *exam, img Image, b *breastShape, number int, vp viewPixels) ([]byte, error) {
	e := ex.e
	g := viewGeometry[img.View]
	laterality, viewPos, viewCode := "L", "CC", codeCC
	if g.right {
		laterality = "R"
	}
	if g.mlo {
		viewPos, viewCode = "MLO", codeMLO
	}
	date := dicomDate(e.Examined)
	// The views are taken about a minute apart, in the order given.
	acqTime := addSeconds(ex.time, 45+60*(number-1))
	bits := presentationBits
	if ex.opt.ForProcessing {
		bits = processingBits
	}
	full := vp.cols == detectorColumns
	thickness := math.Round(b.thickness)
	kvp, mas := exposureFor(thickness)
	mA := 160.0
	ms := math.Round(mas / mA * 1000)
	// As dciodvfy checks: the magnification at the breast support.
	magnification := float64(sourceToDetectorMM) / sourceToSupportMM
	angle := 0
	if g.mlo {
		angle = 45
		if !g.right {
			angle = -45
		}
	}
	issuer := issuerPersonnummer
	if e.Person.IsCoordinationNumber() {
		issuer = issuerSamordningsnummer
	}
	institution := e.Unit
	for _, u := range Units(e.Region) {
		if u.Code == e.Unit {
			institution = u.Name
		}
	}

	var ds elements
	// File meta information (PS3.10 §7.1).
	ds.add(tag.FileMetaInformationVersion, []byte{0, 1})
	ds.add(tag.MediaStorageSOPClassUID, img.SOPClassUID)
	ds.add(tag.MediaStorageSOPInstanceUID, img.SOPInstanceUID)
	ds.add(tag.TransferSyntaxUID, TransferSyntaxExplicitLittle)
	ds.add(tag.ImplementationClassUID, hashUID("implementation"))
	ds.add(tag.ImplementationVersionName, "BILDRUM_"+bildrum.Version)

	// SOP Common.
	ds.add(tag.SpecificCharacterSet, "ISO_IR 192")
	ds.add(tag.InstanceCreationDate, date)
	ds.add(tag.InstanceCreationTime, acqTime)
	ds.add(tag.SOPClassUID, img.SOPClassUID)
	ds.add(tag.SOPInstanceUID, img.SOPInstanceUID)
	ds.add(tag.InstanceNumber, strconv.Itoa(number))

	// Patient, Patient Study.
	ds.add(tag.PatientName, ex.name)
	ds.add(tag.PatientID, string(e.Person))
	ds.add(tag.TypeOfPatientID, "TEXT")
	issuerItem := &elements{}
	issuerItem.add(tag.UniversalEntityID, issuer)
	issuerItem.add(tag.UniversalEntityIDType, "ISO")
	ds.addSequence(tag.IssuerOfPatientIDQualifiersSequence, issuerItem)
	ds.add(tag.PatientBirthDate, dicomDate(bildrum.DateOf(e.Person.BirthDate())))
	ds.add(tag.PatientSex, "F")
	ds.add(tag.PatientAge, fmt.Sprintf("%03dY", min(e.Person.AgeAt(e.Examined.Time()), 999)))

	// General Study.
	ds.add(tag.StudyInstanceUID, img.StudyInstanceUID)
	ds.add(tag.StudyDate, date)
	ds.add(tag.StudyTime, ex.time)
	ds.add(tag.ReferringPhysicianName, "")
	ds.add(tag.StudyID, ex.uids.StudyID)
	ds.add(tag.AccessionNumber, ex.uids.AccessionNumber)
	ds.add(tag.StudyDescription, "Screening mammography")
	ds.addSequence(tag.ProcedureCodeSequence, codeScreening.item())

	// General Series, DX Series, Mammography Series.
	ds.add(tag.Modality, "MG")
	ds.add(tag.SeriesInstanceUID, img.SeriesInstanceUID)
	seriesNumber, seriesDescription := "1", "Screening views"
	if ex.opt.ForProcessing {
		seriesNumber, seriesDescription = "2", "Screening views, for processing"
	}
	ds.add(tag.SeriesNumber, seriesNumber)
	ds.add(tag.SeriesDate, date)
	ds.add(tag.SeriesTime, ex.time)
	ds.add(tag.SeriesDescription, seriesDescription)
	ds.add(tag.BodyPartExamined, "BREAST")
	ds.add(tag.PresentationIntentType, ex.intent)

	// General Equipment.
	ds.add(tag.Manufacturer, "bildrum synthetic")
	ds.add(tag.InstitutionName, institution)
	ds.add(tag.ManufacturerModelName, "bildrum synth")
	ds.add(tag.DeviceSerialNumber, "SYNTH-"+e.Unit)
	ds.add(tag.SoftwareVersions, "bildrum "+bildrum.Version)

	// General Image, DX Image, Mammography Image.
	ds.add(tag.ImageType, []string{"ORIGINAL", "PRIMARY"})
	ds.add(tag.AcquisitionNumber, "1")
	ds.add(tag.AcquisitionDate, date)
	ds.add(tag.AcquisitionTime, acqTime)
	ds.add(tag.AcquisitionDateTime, date+acqTime)
	ds.add(tag.ContentDate, date)
	ds.add(tag.ContentTime, acqTime)
	ds.add(tag.PatientOrientation, patientOrientation[img.View])
	ds.add(tag.ImageLaterality, laterality)
	ds.add(tag.ImageComments, "Synthetic image of no real person, made by bildrum synth")
	ds.add(tag.QualityControlImage, "NO")
	ds.add(tag.BurnedInAnnotation, "NO")
	ds.add(tag.RecognizableVisualFeatures, "NO")
	ds.add(tag.LossyImageCompression, "00")
	ds.add(tag.PixelIntensityRelationship, "LOG")
	ds.add(tag.PixelIntensityRelationshipSign, []int{-1})
	ds.add(tag.RescaleIntercept, "0")
	ds.add(tag.RescaleSlope, "1")
	ds.add(tag.RescaleType, "US")
	ds.add(tag.PresentationLUTShape, "IDENTITY")
	ds.add(tag.BreastImplantPresent, "NO")
	ds.add(tag.PartialView, "NO")
	ds.add(tag.OrganExposed, "BREAST")

	// DX Anatomy Imaged, DX Positioning.
	ds.addSequence(tag.AnatomicRegionSequence, codeBreast.item())
	viewItem := viewCode.item()
	viewItem.addSequence(tag.ViewModifierCodeSequence)
	ds.addSequence(tag.ViewCodeSequence, viewItem)
	ds.add(tag.ViewPosition, viewPos)
	ds.add(tag.PositionerType, "MAMMOGRAPHIC")
	ds.add(tag.PositionerPrimaryAngle, decimal(float64(angle)))
	ds.add(tag.DistanceSourceToDetector, decimal(sourceToDetectorMM))
	ds.add(tag.DistanceSourceToPatient, decimal(sourceToSupportMM))
	ds.add(tag.EstimatedRadiographicMagnificationFactor, decimal(magnification))
	ds.add(tag.BodyPartThickness, decimal(thickness))
	ds.add(tag.CompressionForce, decimal(math.Round(60+thickness)))

	// DX Detector.
	spacing := decimal(vp.spacing)
	ds.add(tag.DetectorType, "DIRECT")
	ds.add(tag.DetectorConfiguration, "AREA")
	ds.add(tag.DetectorID, "SYNTH-1")
	ds.add(tag.ImagerPixelSpacing, []string{spacing, spacing})
	if full {
		pitch := decimal(detectorPitchMM)
		ds.add(tag.DetectorElementPhysicalSize, []string{pitch, pitch})
		ds.add(tag.DetectorElementSpacing, []string{pitch, pitch})
		ds.add(tag.DetectorActiveShape, "RECTANGLE")
		ds.add(tag.DetectorActiveDimensions, []string{decimal(fieldWidthMM), decimal(fieldHeightMM)})
	}
	ds.add(tag.FieldOfViewShape, "RECTANGLE")

	// X-Ray Acquisition Dose, X-Ray Generation, X-Ray Filtration, X-Ray Grid.
	ds.add(tag.KVP, decimal(kvp))
	ds.add(tag.ExposureTime, strconv.Itoa(int(ms)))
	ds.add(tag.XRayTubeCurrent, strconv.Itoa(int(mA)))
	ds.add(tag.Exposure, strconv.Itoa(int(math.Round(mas))))
	ds.add(tag.ExposureInuAs, strconv.Itoa(int(math.Round(mas*1000))))
	ds.add(tag.ExposureControlMode, "AUTOMATIC")
	ds.add(tag.AnodeTargetMaterial, "TUNGSTEN")
	ds.add(tag.FilterMaterial, "RHODIUM")
	ds.add(tag.FilterThicknessMinimum, "0.05")
	ds.add(tag.FilterThicknessMaximum, "0.05")
	ds.add(tag.FocalSpots, "0.3")
	ds.add(tag.Grid, "RECIPROCATING")
	mgd := meanGlandularDose(thickness)
	ds.add(tag.EntranceDoseInmGy, decimal(mgd*4))
	ds.add(tag.OrganDose, decimal(mgd/100)) // dGy

	// Acquisition Context: nothing to say (type 2).
	ds.addSequence(tag.AcquisitionContextSequence)

	// Image Pixel.
	ds.add(tag.SamplesPerPixel, []int{1})
	ds.add(tag.PhotometricInterpretation, "MONOCHROME2")
	ds.add(tag.Rows, []int{vp.rows})
	ds.add(tag.Columns, []int{vp.cols})
	ds.add(tag.BitsAllocated, []int{16})
	ds.add(tag.BitsStored, []int{bits})
	ds.add(tag.HighBit, []int{bits - 1})
	ds.add(tag.PixelRepresentation, []int{0})

	if !ex.opt.ForProcessing {
		// VOI LUT: a window over the breast tissue. It is required for
		// presentation and not allowed for processing (PS3.3 C.8.11.3).
		// The window opens below the fat, so the skin edge stands out
		// from the background.
		lo, hi := vp.tissueLo*0.45, vp.tissueHi
		hi += 0.05 * (hi - lo)
		center := math.Round((lo + hi) / 2)
		width := math.Round(math.Max(hi-lo, 16))
		ds.add(tag.WindowCenter, decimal(center))
		ds.add(tag.WindowWidth, decimal(width))
		ds.add(tag.WindowCenterWidthExplanation, "TISSUE")
		ds.add(tag.VOILUTFunction, "LINEAR")
	}

	if ds.err != nil {
		return nil, ds.err
	}
	var head bytes.Buffer
	if err := dicom.Write(&head, dicom.Dataset{Elements: ds.sorted()}); err != nil {
		return nil, fmt.Errorf("write DICOM: %w", err)
	}
	// Pixel Data (7FE0,0010) OW, explicit VR little endian.
	h := head.Bytes()
	h = binary.LittleEndian.AppendUint16(h, 0x7fe0)
	h = binary.LittleEndian.AppendUint16(h, 0x0010)
	h = append(h, 'O', 'W', 0, 0)
	h = binary.LittleEndian.AppendUint32(h, uint32(len(vp.data)))
	start := headerRoom - len(h)
	if start < 0 {
		return nil, fmt.Errorf("write DICOM: header of %d bytes does not fit in %d", len(h), headerRoom)
	}
	copy(buf[start:], h)
	return buf[start : headerRoom+len(vp.data) : headerRoom+len(vp.data)], nil
}

// exposureFor returns a plausible automatic exposure (kVp, mAs) of a W/Rh
// system for a compressed thickness in mm.
func exposureFor(thicknessMM float64) (kvp, mas float64) {
	kvp = math.Round(25 + (thicknessMM-20)/8)
	mas = math.Round(60 + 2.2*(thicknessMM-20))
	return kvp, mas
}

// meanGlandularDose is a typical mean glandular dose in mGy for the
// thickness (about 1.2 mGy at 45 mm; the EU guidelines' achievable level
// there is 1.6).
func meanGlandularDose(thicknessMM float64) float64 {
	return 0.6 + 0.013*thicknessMM
}

// elements collects data elements, remembering the first error.
type elements struct {
	list []*dicom.Element
	err  error
}

// add appends an element; v is a string, []string, []int, []byte or
// dicom.PixelDataInfo.
func (l *elements) add(t tag.Tag, v any) {
	if s, ok := v.(string); ok {
		v = []string{s}
		if s == "" {
			v = []string{}
		}
	}
	el, err := dicom.NewElement(t, v)
	if err != nil && l.err == nil {
		l.err = fmt.Errorf("element %s: %w", t, err)
		return
	}
	l.list = append(l.list, el)
}

// addSequence appends a sequence of the items (none for an empty sequence).
func (l *elements) addSequence(t tag.Tag, items ...*elements) {
	seq := make([][]*dicom.Element, 0, len(items))
	for _, it := range items {
		if it.err != nil && l.err == nil {
			l.err = it.err
		}
		seq = append(seq, it.sorted())
	}
	l.add(t, seq)
}

// sorted returns the elements in ascending tag order, as PS3.5 §7.1 requires.
func (l *elements) sorted() []*dicom.Element {
	slices.SortFunc(l.list, func(a, b *dicom.Element) int {
		if c := cmp.Compare(a.Tag.Group, b.Tag.Group); c != 0 {
			return c
		}
		return cmp.Compare(a.Tag.Element, b.Tag.Element)
	})
	return l.list
}

// decimal formats a DS value: at most 16 characters, no exponent, no
// trailing zeros.
func decimal(v float64) string {
	s := strconv.FormatFloat(v, 'f', 6, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if len(s) > 16 {
		s = s[:16]
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// dicomDate formats a date as a DA value, YYYYMMDD.
func dicomDate(d bildrum.Date) string {
	return fmt.Sprintf("%04d%02d%02d", d.Year, int(d.Month), d.Day)
}

// addSeconds adds seconds to a TM value HHMMSS, staying within the day.
func addSeconds(hhmmss string, seconds int) string {
	h, _ := strconv.Atoi(hhmmss[0:2])
	m, _ := strconv.Atoi(hhmmss[2:4])
	s, _ := strconv.Atoi(hhmmss[4:6])
	t := min(h*3600+m*60+s+seconds, 24*3600-1)
	return fmt.Sprintf("%02d%02d%02d", t/3600, t/60%60, t%60)
}
