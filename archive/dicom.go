package archive

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// Transfer syntaxes the archive treats specially (PS3.5 §10, Annex A).
const (
	ImplicitVRLittleEndian         = "1.2.840.10008.1.2"
	ExplicitVRLittleEndian         = "1.2.840.10008.1.2.1"
	DeflatedExplicitVRLittleEndian = "1.2.840.10008.1.2.1.99"
	ExplicitVRBigEndian            = "1.2.840.10008.1.2.2"
)

// Uncompressed reports whether pixel data in the transfer syntax are native
// (not encapsulated), so that frames can be cut from the stored bytes.
func Uncompressed(ts string) bool {
	switch ts {
	case ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian:
		return true
	}
	return false
}

// PixelData says where the Pixel Data (7FE0,0010) element of a PS3.10 file
// lies in the file's bytes.
type PixelData struct {
	ElementOffset int64 // first byte of the element's tag
	Offset        int64 // first byte of the value (for encapsulated data, of the first item)
	Length        int64 // bytes of the value (for encapsulated data, up to and including the sequence delimiter)
	Encapsulated  bool  // the value is a sequence of fragments (a compressed transfer syntax)
	VR            string
}

// Header is what the archive reads from a DICOM PS3.10 file: its elements
// other than pixel data, parsed by github.com/suyashkumar/dicom, and where
// the pixel data are. The bytes themselves are never rewritten.
type Header struct {
	Size              int64 // bytes of the file
	TransferSyntaxUID string
	Dataset           dicom.Dataset // file meta and data set elements, without Pixel Data
	Pixel             *PixelData    // nil when the file has no top-level Pixel Data
}

// maxDepth bounds the nesting of sequences a file may have.
const maxDepth = 32

// ErrNotDICOM is wrapped by ReadHeader's errors for input that is not a
// well-formed DICOM PS3.10 file.
var ErrNotDICOM = errors.New("not a DICOM PS3.10 file")

// ReadHeader reads the header of the PS3.10 file of size bytes in r.
//
// It first walks the structure of the file itself, checking every length
// against the bytes that remain, so that a malformed or hostile file cannot
// make the parser allocate more than the file holds; then it lets the
// library parse the elements before and after Pixel Data, never the pixel
// data themselves. Errors wrap ErrNotDICOM and say what is wrong.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	w := &walker{c: newCursor(r, size)}
	ts, err := w.walkFile()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	}
	h := &Header{Size: size, TransferSyntaxUID: ts, Pixel: w.pixel}

	// The library sees the file without its pixel data element; in a
	// deflated file offsets are those of the inflated stream, so it gets
	// the whole file and skips the pixel data itself.
	var in io.Reader = io.NewSectionReader(r, 0, size)
	n := size
	if w.pixel != nil && ts != DeflatedExplicitVRLittleEndian {
		end := w.pixel.Offset + w.pixel.Length
		in = io.MultiReader(io.NewSectionReader(r, 0, w.pixel.ElementOffset), io.NewSectionReader(r, end, size-end))
		n = w.pixel.ElementOffset + size - end
	}
	ds, err := parseLibrary(in, n)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotDICOM, err)
	}
	h.Dataset = ds
	return h, nil
}

// parseLibrary runs the library's parser, turning its panics on malformed
// input into errors.
func parseLibrary(in io.Reader, n int64) (ds dicom.Dataset, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parse: %v", p)
		}
	}()
	ds, err = dicom.Parse(in, n, nil, dicom.SkipPixelData(), dicom.AllowUnknownSpecificCharacterSet())
	if err != nil {
		return ds, fmt.Errorf("parse: %w", err)
	}
	return ds, nil
}

// Element returns the top-level element with tag t, or nil.
func (h *Header) Element(t tag.Tag) *dicom.Element {
	for _, e := range h.Dataset.Elements {
		if e.Tag == t {
			return e
		}
	}
	return nil
}

// String returns the value of a top-level text element, its values joined
// by backslashes, or "" when absent.
func (h *Header) String(t tag.Tag) string {
	e := h.Element(t)
	if e == nil || e.Value == nil {
		return ""
	}
	switch v := e.Value.GetValue().(type) {
	case []string:
		return strings.TrimSpace(strings.Join(v, `\`))
	case []int:
		if len(v) > 0 {
			return strconv.Itoa(v[0])
		}
	}
	return ""
}

// Int returns the first value of a top-level integer element (US, SS, UL,
// SL) or integer string (IS), and whether it has one.
func (h *Header) Int(t tag.Tag) (int, bool) {
	e := h.Element(t)
	if e == nil || e.Value == nil {
		return 0, false
	}
	switch v := e.Value.GetValue().(type) {
	case []int:
		if len(v) > 0 {
			return v[0], true
		}
	case []string:
		if len(v) > 0 {
			n, err := strconv.Atoi(strings.TrimSpace(v[0]))
			return n, err == nil
		}
	}
	return 0, false
}

// Floats returns the values of a top-level decimal string (DS) or floating
// point element.
func (h *Header) Floats(t tag.Tag) []float64 {
	e := h.Element(t)
	if e == nil || e.Value == nil {
		return nil
	}
	switch v := e.Value.GetValue().(type) {
	case []float64:
		return v
	case []string:
		var out []float64
		for _, s := range v {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil
			}
			out = append(out, f)
		}
		return out
	case []int:
		var out []float64
		for _, n := range v {
			out = append(out, float64(n))
		}
		return out
	}
	return nil
}

// Instance returns the index entry of the file's attributes; the caller
// adds the object. It fails with EINVALID when a UID the archive needs is
// missing.
func (h *Header) Instance() (bildrum.Instance, error) {
	in := bildrum.Instance{
		Study: bildrum.Study{
			Patient: bildrum.Patient{
				ID:        h.String(tag.PatientID),
				Name:      h.String(tag.PatientName),
				BirthDate: h.String(tag.PatientBirthDate),
				Sex:       h.String(tag.PatientSex),
			},
			StudyInstanceUID:       h.String(tag.StudyInstanceUID),
			StudyDate:              h.String(tag.StudyDate),
			StudyTime:              h.String(tag.StudyTime),
			AccessionNumber:        h.String(tag.AccessionNumber),
			StudyID:                h.String(tag.StudyID),
			StudyDescription:       h.String(tag.StudyDescription),
			ReferringPhysicianName: h.String(tag.ReferringPhysicianName),
		},
		Series: bildrum.Series{
			SeriesInstanceUID: h.String(tag.SeriesInstanceUID),
			Modality:          h.String(tag.Modality),
			SeriesNumber:      h.String(tag.SeriesNumber),
			SeriesDescription: h.String(tag.SeriesDescription),
			BodyPartExamined:  h.String(tag.BodyPartExamined),
		},
		SOPClassUID:       h.String(tag.SOPClassUID),
		SOPInstanceUID:    h.String(tag.SOPInstanceUID),
		InstanceNumber:    h.String(tag.InstanceNumber),
		ImageLaterality:   h.String(tag.ImageLaterality),
		ViewPosition:      h.String(tag.ViewPosition),
		TransferSyntaxUID: h.TransferSyntaxUID,
	}
	in.Rows, _ = h.Int(tag.Rows)
	in.Columns, _ = h.Int(tag.Columns)
	in.BitsAllocated, _ = h.Int(tag.BitsAllocated)
	if h.Pixel != nil {
		in.NumberOfFrames = 1
		if n, ok := h.Int(tag.NumberOfFrames); ok && n > 0 {
			in.NumberOfFrames = n
		}
	}
	var missing []string
	for name, v := range map[string]string{"SOP Instance UID (0008,0018)": in.SOPInstanceUID, "SOP Class UID (0008,0016)": in.SOPClassUID,
		"Study Instance UID (0020,000D)": in.Study.StudyInstanceUID, "Series Instance UID (0020,000E)": in.Series.SeriesInstanceUID} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return in, bildrum.Errorf(bildrum.EINVALID, "the data set lacks %s", strings.Join(missing, ", "))
	}
	return in, nil
}

// cursor reads a file at increasing offsets through a window, so that
// walking the elements of a file costs few reads, and skipping a value costs
// none.
type cursor struct {
	r      io.ReaderAt
	off    int64 // next byte to read
	end    int64 // size of the file
	win    []byte
	winOff int64
}

func newCursor(r io.ReaderAt, size int64) *cursor {
	if b, ok := r.(bytesReaderAt); ok && int64(len(b)) >= size {
		// In memory: the window is the file, read without copying.
		return &cursor{r: r, end: size, win: b[:size:size]}
	}
	return &cursor{r: r, end: size, win: make([]byte, 0, min(size, 64<<10))}
}

func (c *cursor) remaining() int64 { return c.end - c.off }

// read returns the next n (small) bytes.
func (c *cursor) read(n int) ([]byte, error) {
	if int64(n) > c.remaining() {
		return nil, io.ErrUnexpectedEOF
	}
	if c.off < c.winOff || c.off+int64(n) > c.winOff+int64(len(c.win)) {
		c.win = c.win[:cap(c.win)]
		m, err := c.r.ReadAt(c.win, c.off)
		if m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		c.win, c.winOff = c.win[:m], c.off
	}
	b := c.win[c.off-c.winOff : c.off-c.winOff+int64(n)]
	c.off += int64(n)
	return b, nil
}

func (c *cursor) skip(n int64) error {
	if n > c.remaining() {
		return io.ErrUnexpectedEOF
	}
	c.off += n
	return nil
}

// walker checks the structure of a PS3.10 file (PS3.10 §7, PS3.5 §7).
type walker struct {
	c        *cursor
	bo       binary.ByteOrder
	implicit bool
	pixel    *PixelData
}

// Tags of the item and delimiters (PS3.5 §7.5).
const (
	itemTag         = 0xFFFEE000
	itemDelimTag    = 0xFFFEE00D
	sequenceDelimTg = 0xFFFEE0DD
	pixelDataTag    = 0x7FE00010
	undefinedLength = 0xFFFFFFFF
)

// walkFile checks the preamble, the file meta information and the data
// set, and returns the transfer syntax.
func (w *walker) walkFile() (string, error) {
	pre, err := w.c.read(132)
	if err != nil || string(pre[128:]) != "DICM" {
		return "", errors.New("no DICM prefix after the 128-byte preamble (PS3.10 §7.1): send PS3.10 files, not bare data sets")
	}
	w.bo, w.implicit = binary.LittleEndian, false
	ts := ""
	for w.c.remaining() >= 8 {
		b, _ := w.c.read(2)
		group := binary.LittleEndian.Uint16(b)
		w.c.off -= 2
		if group != 0x0002 {
			break
		}
		start := w.c.off
		t, _, vl, err := w.elementHeader()
		if err != nil {
			return "", fmt.Errorf("file meta information: %w", err)
		}
		if vl == undefinedLength || int64(vl) > w.c.remaining() {
			return "", fmt.Errorf("file meta element %s at byte %d: length %d runs past the end of the file", tagString(t), start, vl)
		}
		if t == 0x00020010 {
			v, _ := w.c.read(int(vl))
			ts = strings.TrimRight(string(v), " \x00")
			continue
		}
		w.c.skip(int64(vl))
	}
	if ts == "" {
		return "", errors.New("the file meta information has no Transfer Syntax UID (0002,0010)")
	}
	switch ts {
	case ImplicitVRLittleEndian:
		w.implicit = true
	case ExplicitVRBigEndian:
		w.bo = binary.BigEndian
	case DeflatedExplicitVRLittleEndian:
		return ts, w.walkDeflated()
	}
	return ts, w.walkElements(0, w.c.end, false)
}

// maxInflated bounds the inflated data set of a deflated file.
const maxInflated = 256 << 20

// walkDeflated checks the inflated data set of a deflated file. Pixel data
// offsets are then those of the inflated stream, not of the file.
func (w *walker) walkDeflated() error {
	zr := flate.NewReader(io.NewSectionReader(w.c.r, w.c.off, w.c.remaining()))
	data, err := io.ReadAll(io.LimitReader(zr, maxInflated+1))
	if err != nil {
		return fmt.Errorf("inflate the deflated data set: %w", err)
	}
	if len(data) > maxInflated {
		return fmt.Errorf("the deflated data set inflates to more than %d MiB", maxInflated>>20)
	}
	inner := &walker{c: newCursor(bytes.NewReader(data), int64(len(data))), bo: binary.LittleEndian}
	if err := inner.walkElements(0, int64(len(data)), false); err != nil {
		return err
	}
	w.pixel = inner.pixel
	return nil
}

// elementHeader reads the tag, VR and length of the next element.
func (w *walker) elementHeader() (uint32, string, uint32, error) {
	b, err := w.c.read(8)
	if err != nil {
		return 0, "", 0, errors.New("the file ends inside an element header")
	}
	t := uint32(w.bo.Uint16(b))<<16 | uint32(w.bo.Uint16(b[2:]))
	if t>>16 == 0xFFFE || w.implicit {
		// Items and delimiters have no VR (PS3.5 §7.5); implicit VR
		// elements take theirs from the dictionary.
		vr := "UN"
		if info, err := tag.Find(tag.Tag{Group: uint16(t >> 16), Element: uint16(t)}); err == nil && len(info.VRs) > 0 {
			vr = info.VRs[0]
		}
		return t, vr, w.bo.Uint32(b[4:]), nil
	}
	vr := string(b[4:6])
	switch vr {
	case "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV":
		l, err := w.c.read(4)
		if err != nil {
			return 0, "", 0, errors.New("the file ends inside an element header")
		}
		return t, vr, w.bo.Uint32(l), nil
	}
	if vr[0] < 'A' || vr[0] > 'Z' || vr[1] < 'A' || vr[1] > 'Z' {
		return 0, "", 0, fmt.Errorf("element %s has no valid VR (%q)", tagString(t), vr)
	}
	return t, vr, uint32(w.bo.Uint16(b[6:])), nil
}

// walkElements walks the elements from the cursor up to end (or up to an
// item delimiter when undefinedItem), checking each length.
func (w *walker) walkElements(depth int, end int64, undefinedItem bool) error {
	if depth > maxDepth {
		return fmt.Errorf("sequences nest deeper than %d levels", maxDepth)
	}
	for w.c.off < end {
		start := w.c.off
		t, vr, vl, err := w.elementHeader()
		if err != nil {
			return err
		}
		if t == itemDelimTag {
			if undefinedItem {
				return nil
			}
			return fmt.Errorf("item delimiter at byte %d outside an item of undefined length", start)
		}
		if t>>16 == 0xFFFE {
			return fmt.Errorf("unexpected item tag %s at byte %d", tagString(t), start)
		}
		switch {
		case t == pixelDataTag && depth == 0 && vl == undefinedLength:
			valStart := w.c.off
			if err := w.walkFragments(); err != nil {
				return fmt.Errorf("encapsulated pixel data: %w", err)
			}
			w.pixel = &PixelData{ElementOffset: start, Offset: valStart, Length: w.c.off - valStart, Encapsulated: true, VR: vr}
		case vl == undefinedLength && vr == "UN" && !w.implicit:
			// A sequence of unknown VR is encoded in Implicit VR Little
			// Endian, whatever the transfer syntax (PS3.5 §6.2.2).
			bo := w.bo
			w.implicit, w.bo = true, binary.LittleEndian
			err := w.walkItems(depth + 1)
			w.implicit, w.bo = false, bo
			if err != nil {
				return fmt.Errorf("sequence %s: %w", tagString(t), err)
			}
		case vl == undefinedLength && (vr == "SQ" || vr == "UN" || t == pixelDataTag):
			if err := w.walkItems(depth + 1); err != nil {
				return fmt.Errorf("sequence %s: %w", tagString(t), err)
			}
		case vl == undefinedLength:
			return fmt.Errorf("element %s (%s) at byte %d has undefined length, which only sequences may have", tagString(t), vr, start)
		case int64(vl) > end-w.c.off:
			return fmt.Errorf("element %s at byte %d: length %d runs past the end of its container (%d bytes left): the file is truncated or corrupt", tagString(t), start, vl, end-w.c.off)
		case vr == "SQ":
			valEnd := w.c.off + int64(vl)
			if err := w.walkDefinedItems(depth+1, valEnd); err != nil {
				return fmt.Errorf("sequence %s: %w", tagString(t), err)
			}
		default:
			if t == pixelDataTag && depth == 0 {
				w.pixel = &PixelData{ElementOffset: start, Offset: w.c.off, Length: int64(vl), VR: vr}
			}
			w.c.skip(int64(vl))
		}
	}
	if undefinedItem {
		return errors.New("the file ends inside an item of undefined length")
	}
	if w.c.off != end {
		return fmt.Errorf("elements overrun their container by %d bytes", w.c.off-end)
	}
	return nil
}

// itemHeader reads the tag and length of the next item of a sequence or of
// encapsulated pixel data (PS3.5 §7.5), and the offset it starts at; inside
// names what is being read, for the error.
func (w *walker) itemHeader(inside string) (start int64, tag, length uint32, err error) {
	start = w.c.off
	b, err := w.c.read(8)
	if err != nil {
		return start, 0, 0, errors.New("the file ends inside " + inside)
	}
	return start, uint32(w.bo.Uint16(b))<<16 | uint32(w.bo.Uint16(b[2:])), w.bo.Uint32(b[4:]), nil
}

// walkItems walks the items of a sequence of undefined length.
func (w *walker) walkItems(depth int) error {
	for {
		start, t, vl, err := w.itemHeader("a sequence")
		if err != nil {
			return err
		}
		switch {
		case t == sequenceDelimTg:
			return nil
		case t != itemTag:
			return fmt.Errorf("expected an item at byte %d, found %s", start, tagString(t))
		case vl == undefinedLength:
			if err := w.walkElements(depth, w.c.end, true); err != nil {
				return err
			}
		case int64(vl) > w.c.remaining():
			return fmt.Errorf("item at byte %d: length %d runs past the end of the file", start, vl)
		default:
			if err := w.walkElements(depth, w.c.off+int64(vl), false); err != nil {
				return err
			}
		}
	}
}

// walkDefinedItems walks the items of a sequence of defined length.
func (w *walker) walkDefinedItems(depth int, end int64) error {
	for w.c.off < end {
		start, t, vl, err := w.itemHeader("a sequence")
		if err != nil {
			return err
		}
		switch {
		case t != itemTag:
			return fmt.Errorf("expected an item at byte %d, found %s", start, tagString(t))
		case vl == undefinedLength:
			if err := w.walkElements(depth, end, true); err != nil {
				return err
			}
		case int64(vl) > end-w.c.off:
			return fmt.Errorf("item at byte %d: length %d runs past the end of its sequence", start, vl)
		default:
			if err := w.walkElements(depth, w.c.off+int64(vl), false); err != nil {
				return err
			}
		}
	}
	if w.c.off != end {
		return fmt.Errorf("items overrun their sequence by %d bytes", w.c.off-end)
	}
	return nil
}

// walkFragments walks the items of encapsulated pixel data (PS3.5 §A.4).
func (w *walker) walkFragments() error {
	for {
		start, t, vl, err := w.itemHeader("the pixel data fragments")
		if err != nil {
			return err
		}
		switch {
		case t == sequenceDelimTg:
			return nil
		case t != itemTag || vl == undefinedLength:
			return fmt.Errorf("expected a fragment item of defined length at byte %d, found %s", start, tagString(t))
		case w.c.skip(int64(vl)) != nil:
			return fmt.Errorf("fragment at byte %d: length %d runs past the end of the file", start, vl)
		}
	}
}

func tagString(t uint32) string { return fmt.Sprintf("(%04X,%04X)", t>>16, t&0xFFFF) }
