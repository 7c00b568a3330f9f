package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"

	"github.com/bildrum/bildrum"
)

// The SOP classes of the synthetic mammograms (PS3.4 Annex B, PS3.3 A.26.2).
const (
	SOPClassMammoForPresentation = "1.2.840.10008.5.1.4.1.1.1.2"
	SOPClassMammoForProcessing   = "1.2.840.10008.5.1.4.1.1.1.2.1"
)

// TransferSyntaxExplicitLittle is Explicit VR Little Endian, the transfer
// syntax of every synthetic image.
const TransferSyntaxExplicitLittle = "1.2.840.10008.1.2.1"

// FullWidth is the width in pixels of a full-size synthetic image, that of
// a large-field mammography detector (3328 × 4096 at 0.07 mm).
const FullWidth = detectorColumns

// MinWidth is the smallest ImageOptions.Width accepted other than 0.
const MinWidth = 64

// ImageOptions says how to make the synthetic mammograms. The zero value
// makes full-size For Presentation images.
type ImageOptions struct {
	// Width is the number of columns: 0 for the full detector (FullWidth,
	// 3328 × 4096 pixels of 0.07 mm), or MinWidth to FullWidth for a smaller
	// image of the same field of view (the height follows, the pixel
	// spacing grows), such as 256 or 512 for a demo.
	Width int

	// ForProcessing makes Digital Mammography X-Ray Image Storage – For
	// Processing images (the detector's raw log signal, 14 bits) instead
	// of For Presentation ones (processed for display, 12 bits).
	ForProcessing bool
}

// size returns the image size and pixel spacing of the options.
func (o ImageOptions) size() (cols, rows int, spacing float64, err error) {
	w := o.Width
	if w == 0 {
		return detectorColumns, detectorRows, detectorPitchMM, nil
	}
	if w < MinWidth || w > FullWidth {
		return 0, 0, 0, bildrum.Errorf(bildrum.EINVALID, "image width %d: want 0 (full size, %d) or %d to %d pixels", w, FullWidth, MinWidth, FullWidth)
	}
	spacing = fieldWidthMM / float64(w)
	rows = int(fieldHeightMM/spacing + 0.5)
	return w, rows, spacing, nil
}

// Image is one synthetic mammogram: a DICOM PS3.10 file and the
// identifiers an archive indexes it by.
type Image struct {
	View              string // RCC, LCC, RMLO or LMLO (bildrum.ViewRCC …)
	SOPClassUID       string // SOPClassMammoForPresentation or SOPClassMammoForProcessing
	SOPInstanceUID    string
	StudyInstanceUID  string
	SeriesInstanceUID string
	Data              []byte // the PS3.10 file: preamble, DICM, meta group, data set
}

// ExamUIDs are the identifiers of an examination's synthetic images.
// Every one is a function of the episode ID alone, so an archive that
// stores an episode's images and a register that lists the episode agree
// on them without talking to each other.
type ExamUIDs struct {
	Study           string // StudyInstanceUID, shared by both intents
	AccessionNumber string // at most 16 characters (SH)
	StudyID         string // at most 16 characters (SH)

	// ForPresentation and ForProcessing are the series of each intent.
	ForPresentation SeriesUIDs
	ForProcessing   SeriesUIDs
}

// SeriesUIDs are the identifiers of one series of an examination.
type SeriesUIDs struct {
	Series    string            // SeriesInstanceUID
	Instances map[string]string // SOPInstanceUID by view (RCC, LCC, RMLO, LMLO)
}

// Series returns the series of the intent.
func (u ExamUIDs) Series(forProcessing bool) SeriesUIDs {
	if forProcessing {
		return u.ForProcessing
	}
	return u.ForPresentation
}

// StudyUIDs returns the identifiers of the synthetic images of episode e:
// the UIDs are "2.25." and the decimal value of a UUID made from a SHA-256
// hash of the episode ID and the role (PS3.5 §B.2; the UUID is of version 8,
// RFC 9562's for custom hashes), the accession number is the region code and
// 14 hex digits of the episode ID. It does not check that e was attended.
func StudyUIDs(e bildrum.ScreeningEpisode) ExamUIDs {
	u := ExamUIDs{
		Study:           hashUID("study", e.ID),
		AccessionNumber: accessionNumber(e.ID),
		StudyID:         studyID(e.ID),
	}
	for _, intent := range []string{intentPresentation, intentProcessing} {
		s := SeriesUIDs{Series: hashUID("series", e.ID, intent), Instances: make(map[string]string, 4)}
		for _, v := range bildrum.StandardViews() {
			s.Instances[v] = hashUID("instance", e.ID, intent, v)
		}
		if intent == intentProcessing {
			u.ForProcessing = s
		} else {
			u.ForPresentation = s
		}
	}
	return u
}

// The PresentationIntentType values (PS3.3 C.8.11.1).
const (
	intentPresentation = "FOR PRESENTATION"
	intentProcessing   = "FOR PROCESSING"
)

// hashUID returns 2.25.<UUID as a decimal integer>, the UUID being the
// first 16 bytes of SHA-256 over the parts with the version (8) and variant
// bits set.
func hashUID(parts ...string) string {
	h := sha256.Sum256([]byte("bildrum synth\x00" + strings.Join(parts, "\x00")))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return "2.25." + new(big.Int).SetBytes(b).String()
}

// accessionNumber is the episode's region code and the first 14 hex digits
// of its hash, upper case: 16 characters, the most an SH holds.
func accessionNumber(episodeID string) string {
	region, hash, ok := strings.Cut(episodeID, "-")
	if !ok || len(region) != 2 || len(hash) < 14 {
		sum := sha256.Sum256([]byte(episodeID))
		return fmt.Sprintf("%X", sum[:8])
	}
	return strings.ToUpper(region + hash[:14])
}

// studyID is a short study number: 8 decimal digits from the episode ID's hash.
func studyID(episodeID string) string {
	sum := sha256.Sum256([]byte("study-id\x00" + episodeID))
	return fmt.Sprintf("%08d", binary.BigEndian.Uint32(sum[:4])%100_000_000)
}

// Mammograms makes the synthetic images of an attended screening episode:
// one per view in e.Views (the four standard views when empty), in that
// order, as DICOM PS3.10 files of Digital Mammography X-Ray Image Storage,
// For Presentation or, with opt.ForProcessing, For Processing. The
// patient is the episode's woman (PatientID is her number), the study date
// the examination date, the breast composition her density reading.
//
// The same episode and options give byte-identical files. The picture is
// synthetic: a breast outline, pectoral muscle, fibroglandular texture and
// noise, with no lesions, whatever the episode's outcome. A bad option,
// an episode that was not attended, or a view that is not one of the four
// standard ones or is listed twice, is an EINVALID error.
func Mammograms(e bildrum.ScreeningEpisode, opt ImageOptions) ([]Image, error) {
	cols, rows, spacing, err := opt.size()
	if err != nil {
		return nil, err
	}
	if !e.Attended || e.Examined.IsZero() {
		return nil, bildrum.Errorf(bildrum.EINVALID, "episode %s: no examination to image: the woman did not attend", e.ID)
	}
	if len(e.Person) != 12 {
		return nil, bildrum.Errorf(bildrum.EINVALID, "episode %s: person %q is not a 12-digit number", e.ID, e.Person)
	}
	views := e.Views
	if len(views) == 0 {
		views = bildrum.StandardViews()
	}
	for i, v := range views {
		if _, ok := viewGeometry[v]; !ok {
			return nil, bildrum.Errorf(bildrum.EINVALID, "episode %s: view %q: want RCC, LCC, RMLO or LMLO", e.ID, v)
		}
		if slices.Contains(views[:i], v) {
			return nil, bildrum.Errorf(bildrum.EINVALID, "episode %s: view %s is listed twice: an image has one SOP Instance UID", e.ID, v)
		}
	}
	ex := newExam(e, opt)
	out := make([]Image, len(views))
	errs := make([]error, len(views))
	// Each view draws its rows in parallel already; two views at a time
	// keep the processors busy through the serial parts.
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, v := range views {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = ex.image(v, i+1, cols, rows, spacing)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// viewGeometry says, per view, whether it is an MLO and of the right breast.
var viewGeometry = map[string]struct{ mlo, right bool }{
	bildrum.ViewRCC:  {false, true},
	bildrum.ViewLCC:  {false, false},
	bildrum.ViewRMLO: {true, true},
	bildrum.ViewLMLO: {true, false},
}

// exam is what the views of one examination share.
type exam struct {
	e       bildrum.ScreeningEpisode
	opt     ImageOptions
	uids    ExamUIDs
	intent  string
	person  uint64 // hash of her number: breast size and name
	episode uint64 // hash of the episode: positioning, shape and noise
	density string
	name    string // PatientName, Family^Given
	time    string // StudyTime HHMMSS
}

func newExam(e bildrum.ScreeningEpisode, opt ImageOptions) *exam {
	ex := &exam{e: e, opt: opt, uids: StudyUIDs(e), intent: intentPresentation}
	if opt.ForProcessing {
		ex.intent = intentProcessing
	}
	ph := sha256.Sum256([]byte("person\x00" + string(e.Person)))
	eh := sha256.Sum256([]byte("episode\x00" + e.ID))
	ex.person = binary.LittleEndian.Uint64(ph[:8])
	ex.episode = binary.LittleEndian.Uint64(eh[:8])
	ex.density = string(e.Density)
	if ex.density == "" {
		// Not read yet: her images still show a composition.
		ex.density = string("abcd"[int(ex.person>>60)%4])
	}
	ex.name = patientName(e.Person)
	// Screening runs 08:00–16:00.
	minute := 8*60 + int(ex.episode>>40)%(8*60)
	ex.time = fmt.Sprintf("%02d%02d%02d", minute/60, minute%60, int(ex.episode>>20)%60)
	return ex
}

// image renders and encodes one view.
func (ex *exam) image(view string, number, cols, rows int, spacing float64) (Image, error) {
	g := viewGeometry[view]
	size := float64(ex.person>>11) / (1 << 53)
	// The woman's breast size is hers; the positioning and the exact shape
	// are the episode's (a breast is not compressed the same way twice).
	side := uint64('L')
	if g.right {
		side = 'R'
	}
	shapeRand := newHashRand(mix(ex.episode, side, uint64(len(view))))
	b := newBreastShape(shapeRand, size, g.mlo, g.right, ex.density)
	// The glandular pattern is the breast's in that projection, the same
	// over her episodes, so priors look like priors; the noise is the
	// image's own.
	// The pixels are drawn in place at the end of the file's buffer; the
	// header goes in front of them (encodeMammogram).
	buf := make([]byte, headerRoom+2*cols*rows)
	vp := renderView(buf[headerRoom:], mix(ex.person, side, uint64(len(view))), mix(ex.episode, side, uint64(len(view)), 1), b, cols, rows, spacing, ex.opt.ForProcessing)
	ser := ex.uids.Series(ex.opt.ForProcessing)
	img := Image{
		View:              view,
		SOPClassUID:       SOPClassMammoForPresentation,
		SOPInstanceUID:    ser.Instances[view],
		StudyInstanceUID:  ex.uids.Study,
		SeriesInstanceUID: ser.Series,
	}
	if ex.opt.ForProcessing {
		img.SOPClassUID = SOPClassMammoForProcessing
	}
	data, err := encodeMammogram(buf, ex, img, b, number, vp)
	if err != nil {
		return Image{}, fmt.Errorf("synth: episode %s view %s: %w", ex.e.ID, view, err)
	}
	img.Data = data
	return img, nil
}

// The synthetic names: common Swedish family and given names, some with
// å, ä and ö, so the files exercise ISO_IR 192 (UTF-8) text.
var (
	familyNames = []string{
		"Testsson", "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson",
		"Larsson", "Olsson", "Persson", "Svensson", "Gustafsson", "Pettersson",
		"Jönsson", "Håkansson", "Åberg", "Öberg", "Ström", "Bäckström",
		"Sjögren", "Söderberg", "Nyström", "Lindqvist", "Ekström", "Björk",
	}
	givenNames = []string{
		"Anna", "Eva", "Maria", "Karin", "Kristina", "Lena", "Sara", "Emma",
		"Ingrid", "Birgitta", "Åsa", "Märta", "Astrid", "Linnéa", "Sofia",
		"Ebba", "Elsa", "Maja", "Görel", "Kerstin", "Ylva", "Malin", "Solveig", "Agnes",
	}
)

// patientName returns the synthetic name of a number, Family^Given, the
// same every time.
func patientName(id bildrum.PersonID) string {
	h := sha256.Sum256([]byte("name\x00" + string(id)))
	f := binary.LittleEndian.Uint32(h[0:4]) % uint32(len(familyNames))
	g := binary.LittleEndian.Uint32(h[4:8]) % uint32(len(givenNames))
	return familyNames[f] + "^" + givenNames[g]
}
