// Package archivetest makes DICOM PS3.10 files for tests and benchmarks of
// the archive: synthetic digital mammograms (For Presentation) with 16-bit
// pixel data, written directly in Explicit VR Little Endian so that sizes up
// to full-field mammograms cost little time. It also starts s3rver, an
// S3-compatible server, for the archive's tests on s3:// (S3rver).
package archivetest

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// MammographyForPresentation is the SOP Class UID of Digital Mammography
// X-Ray Image Storage – For Presentation.
const MammographyForPresentation = "1.2.840.10008.5.1.4.1.1.1.2"

// Image describes a synthetic mammogram. Zero fields take the defaults
// given in their comments.
type Image struct {
	PatientID        string // default 195001182046 (an official test personnummer)
	PatientName      string // default Testsson^Anna
	PatientBirthDate string // default the date of the personnummer
	StudyUID         string // default a new 2.25 UID
	SeriesUID        string // default a new 2.25 UID
	SOPInstanceUID   string // default a new 2.25 UID
	StudyDate        string // default 20240115
	AccessionNumber  string // default A + the last digits of the study UID
	View             string // RCC (default), LCC, RMLO, LMLO
	InstanceNumber   int    // default 1
	Rows, Columns    int    // default 256 × 208
	BitsStored       int    // default 12
	Photometric      string // MONOCHROME2 (default) or MONOCHROME1
	WindowCenter     float64
	WindowWidth      float64 // 0: no window in the file
	VOILUTFunction   string  // "" (LINEAR), LINEAR_EXACT or SIGMOID
	RescaleSlope     float64 // 0: no Modality LUT in the file
	RescaleIntercept float64
	Seed             uint64 // varies the pixel noise
}

// NewUID returns a fresh UID under the 2.25 root (a UUID as a decimal
// integer, PS3.5 §B.2).
func NewUID() string {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return "2.25." + n.String()
}

// Mammogram returns the bytes of a PS3.10 file for img, with img's
// defaults filled in.
func Mammogram(img *Image) []byte {
	fill(img)
	laterality, view := img.View[:1], img.View[1:]
	w := &writer{}
	w.buf = append(w.buf, make([]byte, 128)...)
	w.buf = append(w.buf, "DICM"...)

	// File meta information (PS3.10 §7.1), group length first.
	meta := &writer{}
	meta.el(0x0002, 0x0001, "OB", []byte{0, 1})
	meta.str(0x0002, 0x0002, "UI", MammographyForPresentation)
	meta.str(0x0002, 0x0003, "UI", img.SOPInstanceUID)
	meta.str(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1")
	meta.str(0x0002, 0x0012, "UI", "1.2.826.0.1.3680043.10.1417.1") // bildrum test implementation
	meta.str(0x0002, 0x0013, "SH", "BILDRUM_TEST")
	w.el(0x0002, 0x0000, "UL", binary.LittleEndian.AppendUint32(nil, uint32(len(meta.buf))))
	w.buf = append(w.buf, meta.buf...)

	w.str(0x0008, 0x0005, "CS", "ISO_IR 192")
	w.str(0x0008, 0x0008, "CS", `ORIGINAL\PRIMARY`)
	w.str(0x0008, 0x0016, "UI", MammographyForPresentation)
	w.str(0x0008, 0x0018, "UI", img.SOPInstanceUID)
	w.str(0x0008, 0x0020, "DA", img.StudyDate)
	w.str(0x0008, 0x0023, "DA", img.StudyDate)
	w.str(0x0008, 0x0030, "TM", "101500")
	w.str(0x0008, 0x0033, "TM", "101500")
	w.str(0x0008, 0x0050, "SH", img.AccessionNumber)
	w.str(0x0008, 0x0060, "CS", "MG")
	w.str(0x0008, 0x0068, "CS", "FOR PRESENTATION")
	w.str(0x0008, 0x0070, "LO", "bildrum synthetic")
	w.str(0x0008, 0x0090, "PN", "Läkare^Lena")
	w.str(0x0008, 0x1030, "LO", "Mammografi screening")
	w.str(0x0008, 0x103E, "LO", "screening "+img.View)
	w.str(0x0010, 0x0010, "PN", img.PatientName)
	w.str(0x0010, 0x0020, "LO", img.PatientID)
	w.str(0x0010, 0x0030, "DA", img.PatientBirthDate)
	w.str(0x0010, 0x0040, "CS", "F")
	w.str(0x0018, 0x0015, "CS", "BREAST")
	w.str(0x0018, 0x5101, "CS", view)
	w.str(0x0020, 0x000D, "UI", img.StudyUID)
	w.str(0x0020, 0x000E, "UI", img.SeriesUID)
	w.str(0x0020, 0x0010, "SH", "1")
	w.str(0x0020, 0x0011, "IS", "1")
	w.str(0x0020, 0x0013, "IS", fmt.Sprint(img.InstanceNumber))
	w.str(0x0020, 0x0020, "CS", map[string]string{"R": `P\L`, "L": `A\R`}[laterality])
	w.str(0x0020, 0x0062, "CS", laterality)
	w.us(0x0028, 0x0002, 1)
	w.str(0x0028, 0x0004, "CS", img.Photometric)
	w.us(0x0028, 0x0010, img.Rows)
	w.us(0x0028, 0x0011, img.Columns)
	w.us(0x0028, 0x0100, 16)
	w.us(0x0028, 0x0101, img.BitsStored)
	w.us(0x0028, 0x0102, img.BitsStored-1)
	w.us(0x0028, 0x0103, 0)
	if img.WindowWidth > 0 {
		w.str(0x0028, 0x1050, "DS", ds(img.WindowCenter))
		w.str(0x0028, 0x1051, "DS", ds(img.WindowWidth))
	}
	if img.RescaleSlope != 0 {
		w.str(0x0028, 0x1052, "DS", ds(img.RescaleIntercept))
		w.str(0x0028, 0x1053, "DS", ds(img.RescaleSlope))
		w.str(0x0028, 0x1054, "LO", "US")
	}
	if img.VOILUTFunction != "" {
		w.str(0x0028, 0x1056, "CS", img.VOILUTFunction)
	}
	shape := "IDENTITY"
	if img.Photometric == "MONOCHROME1" {
		shape = "INVERSE"
	}
	w.str(0x2050, 0x0020, "CS", shape)
	w.el(0x7FE0, 0x0010, "OW", pixels(img))
	return w.buf
}

func fill(img *Image) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&img.PatientID, "195001182046")
	def(&img.PatientName, "Testsson^Anna")
	if len(img.PatientID) >= 8 {
		def(&img.PatientBirthDate, img.PatientID[:8])
	}
	def(&img.StudyUID, NewUID())
	def(&img.SeriesUID, NewUID())
	def(&img.SOPInstanceUID, NewUID())
	def(&img.StudyDate, "20240115")
	def(&img.AccessionNumber, "A"+img.StudyUID[max(0, len(img.StudyUID)-8):])
	def(&img.View, "RCC")
	def(&img.Photometric, "MONOCHROME2")
	if img.InstanceNumber == 0 {
		img.InstanceNumber = 1
	}
	if img.Rows == 0 {
		img.Rows, img.Columns = 256, 208
	}
	if img.BitsStored == 0 {
		img.BitsStored = 12
	}
}

// pixels draws a breast-like shape: a bright half-ellipse on the chest
// wall side over a dark background, with tissue texture and noise.
func pixels(img *Image) []byte {
	out := make([]byte, img.Rows*img.Columns*2)
	maxV := float64(int(1)<<img.BitsStored - 1)
	right := img.View[0] == 'R'
	state := img.Seed*0x9E3779B97F4A7C15 + 1
	i := 0
	for y := 0; y < img.Rows; y++ {
		fy := (float64(y)/float64(img.Rows) - 0.5) * 2
		for x := 0; x < img.Columns; x++ {
			fx := float64(x) / float64(img.Columns)
			if !right {
				fx = 1 - fx
			}
			// xorshift noise, cheap and deterministic.
			state ^= state << 13
			state ^= state >> 7
			state ^= state << 17
			noise := float64(state%1024)/1024 - 0.5
			v := 0.04
			if d := fx*fx/0.7 + fy*fy; d < 1 {
				tissue := 0.5 + 0.25*math.Sin(9*fx+4*fy)*math.Cos(7*fy)
				v = 0.25 + 0.6*(1-d)*tissue
			}
			p := math.Max(0, math.Min(maxV, (v+0.02*noise)*maxV))
			binary.LittleEndian.PutUint16(out[i:], uint16(p))
			i += 2
		}
	}
	return out
}

func ds(f float64) string {
	s := fmt.Sprintf("%.6g", f)
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// writer appends Explicit VR Little Endian elements.
type writer struct{ buf []byte }

func (w *writer) el(group, elem uint16, vr string, value []byte) {
	if len(value)%2 == 1 {
		pad := byte(' ')
		if vr == "UI" || vr == "OB" || vr == "OW" {
			pad = 0
		}
		value = append(value, pad)
	}
	w.buf = binary.LittleEndian.AppendUint16(w.buf, group)
	w.buf = binary.LittleEndian.AppendUint16(w.buf, elem)
	w.buf = append(w.buf, vr...)
	switch vr {
	case "OB", "OW", "SQ", "UN", "UT", "UC", "UR", "OD", "OF", "OL", "OV":
		w.buf = append(w.buf, 0, 0)
		w.buf = binary.LittleEndian.AppendUint32(w.buf, uint32(len(value)))
	default:
		w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(len(value)))
	}
	w.buf = append(w.buf, value...)
}

func (w *writer) str(group, elem uint16, vr, s string) {
	w.el(group, elem, vr, []byte(strings.TrimSpace(s)))
}

func (w *writer) us(group, elem uint16, v int) {
	w.el(group, elem, "US", binary.LittleEndian.AppendUint16(nil, uint16(v)))
}
