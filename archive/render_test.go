package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bildrum/bildrum/archive"
	"github.com/bildrum/bildrum/archive/archivetest"
	"github.com/bildrum/bildrum/internal/testenv"
)

// newArchive returns an archive on SQLite and a blob directory.
func newArchive(t testing.TB) *archive.Archive { return archive.NewTestArchive(t) }

// Rendering tolerance against DCMTK: rounding of the VOI LUT output may
// differ by one grey level at most on a few pixels.
const (
	maxMeanDiff = 1.0
	maxDiff     = 2
)

// TestRenderMatchesDCMTK renders synthetic mammograms with the archive and
// with DCMTK's dcmj2pnm, with the same window, and compares the greys.
func TestRenderMatchesDCMTK(t *testing.T) {
	dcmj2pnm := testenv.RequireExternal(t, "dcmj2pnm")
	ctx := context.Background()
	a := newArchive(t)
	tests := []struct {
		name   string
		img    archivetest.Image
		window *archive.Window
		args   []string // dcmj2pnm's VOI options
	}{
		{"file window linear", archivetest.Image{WindowCenter: 1800, WindowWidth: 2500}, nil, []string{"+Wi", "1"}},
		{"request window linear", archivetest.Image{}, &archive.Window{Center: 2100, Width: 1200}, []string{"+Ww", "2100", "1200"}},
		{"narrow window", archivetest.Image{}, &archive.Window{Center: 1500, Width: 40}, []string{"+Ww", "1500", "40"}},
		{"file window sigmoid", archivetest.Image{WindowCenter: 2000, WindowWidth: 1500, VOILUTFunction: "SIGMOID"}, nil, []string{"+Wi", "1"}},
		{"request sigmoid", archivetest.Image{}, &archive.Window{Center: 1700, Width: 900, Function: archive.VOISigmoid}, []string{"+Ww", "1700", "900", "+Wfs"}},
		{"monochrome1", archivetest.Image{Photometric: "MONOCHROME1", WindowCenter: 2000, WindowWidth: 3000}, nil, []string{"+Wi", "1"}},
		{"rescale", archivetest.Image{RescaleSlope: 0.5, RescaleIntercept: -100, WindowCenter: 900, WindowWidth: 1600}, nil, []string{"+Wi", "1"}},
		{"14 bits", archivetest.Image{BitsStored: 14, WindowCenter: 8000, WindowWidth: 12000}, nil, []string{"+Wi", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.img
			img.Rows, img.Columns = 300, 240
			file := archivetest.Mammogram(&img)
			in, err := a.Store(ctx, bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Render(ctx, in, archive.RenderOptions{Window: tt.window})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "in.dcm"), filepath.Join(dir, "out.png")
			os.WriteFile(src, file, 0o600)
			args := append(append([]string{}, tt.args...), "+on", src, dst)
			if out, err := exec.Command(dcmj2pnm, args...).CombinedOutput(); err != nil {
				t.Fatalf("dcmj2pnm %v: %v\n%s", args, err, out)
			}
			f, err := os.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			mean, worst := compare(t, got, want)
			if mean > maxMeanDiff || worst > maxDiff {
				t.Errorf("render differs from dcmj2pnm %v: mean abs diff %.3f (max %.1f), worst %d (max %d)", tt.args, mean, maxMeanDiff, worst, maxDiff)
			}
			t.Logf("mean abs diff %.4f, worst %d", mean, worst)
		})
	}
}

// compare returns the mean and largest absolute difference of two grey images.
func compare(t *testing.T, got *image.Gray, want image.Image) (float64, int) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("size %v, dcmj2pnm's %v", got.Bounds(), want.Bounds())
	}
	sum, worst := 0.0, 0
	b := got.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, _, _, _ := want.At(x, y).RGBA()
			d := int(math.Abs(float64(int(got.GrayAt(x, y).Y) - int(r>>8))))
			sum += float64(d)
			worst = max(worst, d)
		}
	}
	return sum / float64(b.Dx()*b.Dy()), worst
}

// TestRenderCompressed renders a JPEG 2000 file of pydicom's test data
// through gdcmconv, and refuses without a decompressor.
func TestRenderCompressed(t *testing.T) {
	gdcmconv := testenv.RequireExternal(t, "gdcmconv")
	path := "/usr/lib/python3/dist-packages/pydicom/data/test_files/MR_small_jp2klossless.dcm"
	data, err := os.ReadFile(path)
	if err != nil {
		testenv.Unavailable(t, "pydicom's test file %s: %v", path, err)
	}
	ctx := context.Background()
	a := newArchive(t)
	in, err := a.Store(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Render(ctx, in, archive.RenderOptions{}); err != archive.ErrCompressed {
		t.Errorf("Render without decompressor: %v, want ErrCompressed", err)
	}
	a.SetDecompressor(gdcmconv)
	img, err := a.Render(ctx, in, archive.RenderOptions{Width: 32})
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
		t.Errorf("rendered %v, want 32×32", img.Bounds())
	}
	var distinct = map[uint8]bool{}
	for _, p := range img.Pix {
		distinct[p] = true
	}
	if len(distinct) < 20 {
		t.Errorf("rendered image has %d grey levels: %s", len(distinct), fmt.Sprint(img.Pix[:16]))
	}
}
