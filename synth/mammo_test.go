package synth

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"

	"github.com/bildrum/bildrum"
)

// attendedEpisodes returns the first n attended episodes of the default
// population with seed 1.
func attendedEpisodes(t testing.TB, n int) []bildrum.ScreeningEpisode {
	t.Helper()
	var out []bildrum.ScreeningEpisode
	_, err := Generate(context.Background(), Config{Seed: 1}, func(e bildrum.ScreeningEpisode) error {
		if e.Attended && e.Density != "" && len(out) < n {
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < n {
		t.Fatalf("population has %d attended episodes, want %d", len(out), n)
	}
	return out
}

// swedishEpisode returns an attended episode whose woman's synthetic name
// has å, ä or ö, so that the files carry UTF-8 text.
func swedishEpisode(t testing.TB) bildrum.ScreeningEpisode {
	t.Helper()
	for _, e := range attendedEpisodes(t, 200) {
		if strings.ContainsAny(patientName(e.Person), "åäöÅÄÖ") {
			return e
		}
	}
	t.Fatal("no attended episode of the first 200 has a name with å, ä or ö")
	return bildrum.ScreeningEpisode{}
}

// parsed is what the tests read back from a file.
type parsed struct {
	ds         dicom.Dataset
	rows, cols int
	pixels     []uint16
}

// parseImage reads an image back with suyashkumar/dicom (headers) and takes
// its pixels from the end of the file, where the native Pixel Data is.
func parseImage(t testing.TB, img Image) parsed {
	t.Helper()
	ds, err := dicom.Parse(bytes.NewReader(img.Data), int64(len(img.Data)), nil, dicom.SkipPixelData())
	if err != nil {
		t.Fatalf("%s: parse: %v", img.View, err)
	}
	p := parsed{ds: ds, rows: intValue(t, ds, tag.Rows), cols: intValue(t, ds, tag.Columns)}
	n := p.rows * p.cols
	raw := img.Data[len(img.Data)-2*n:]
	p.pixels = make([]uint16, n)
	for i := range p.pixels {
		p.pixels[i] = binary.LittleEndian.Uint16(raw[2*i:])
	}
	return p
}

func intValue(t testing.TB, ds dicom.Dataset, tg tag.Tag) int {
	t.Helper()
	el, err := ds.FindElementByTag(tg)
	if err != nil {
		t.Fatalf("%s: %v", tg, err)
	}
	return dicom.MustGetInts(el.Value)[0]
}

func stringValue(t testing.TB, ds dicom.Dataset, tg tag.Tag) string {
	t.Helper()
	el, err := ds.FindElementByTagNested(tg)
	if err != nil {
		t.Fatalf("%s: %v", tg, err)
	}
	return strings.Join(dicom.MustGetStrings(el.Value), `\`)
}

func TestImageOptionsSize(t *testing.T) {
	tests := []struct {
		width            int
		wantCols, wantRw int
		wantErr          string
	}{
		{0, 3328, 4096, ""},
		{3328, 3328, 4096, ""},
		{512, 512, 630, ""},
		{256, 256, 315, ""},
		{64, 64, 79, ""},
		{63, 0, 0, "want 0 (full size"},
		{-1, 0, 0, "want 0 (full size"},
		{4000, 0, 0, "64 to 3328"},
	}
	for _, tt := range tests {
		cols, rows, _, err := ImageOptions{Width: tt.width}.size()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("Width %d: err %v, want EINVALID %q", tt.width, err, tt.wantErr)
			}
			continue
		}
		if err != nil || cols != tt.wantCols || rows != tt.wantRw {
			t.Errorf("Width %d: %d × %d, %v; want %d × %d", tt.width, cols, rows, err, tt.wantCols, tt.wantRw)
		}
	}
}

func TestMammogramsBadEpisode(t *testing.T) {
	e := attendedEpisodes(t, 1)[0]
	notAttended := e
	notAttended.Attended, notAttended.Examined = false, bildrum.Date{}
	badView := e
	badView.Views = []string{"RCC", "XCCL"}
	twice := e
	twice.Views = []string{"RCC", "LCC", "RCC"}
	tests := []struct {
		name string
		e    bildrum.ScreeningEpisode
		opt  ImageOptions
		want string
	}{
		{"not attended", notAttended, ImageOptions{Width: 64}, "did not attend"},
		{"unknown view", badView, ImageOptions{Width: 64}, `view "XCCL"`},
		{"view twice", twice, ImageOptions{Width: 64}, "listed twice"},
		{"bad width", e, ImageOptions{Width: 10}, "image width 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Mammograms(tt.e, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) || bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("Mammograms = %v, want EINVALID %q", err, tt.want)
			}
		})
	}
}

var uidPattern = regexp.MustCompile(`^2\.25\.(0|[1-9][0-9]*)$`)

func TestStudyUIDs(t *testing.T) {
	eps := attendedEpisodes(t, 2)
	u, again, other := StudyUIDs(eps[0]), StudyUIDs(eps[0]), StudyUIDs(eps[1])
	seen := map[string]bool{}
	check := func(what, uid string) {
		t.Helper()
		if len(uid) > 64 || !uidPattern.MatchString(uid) {
			t.Errorf("%s %q is not a 2.25 UID of at most 64 characters", what, uid)
		}
		if seen[uid] {
			t.Errorf("%s %q is used twice", what, uid)
		}
		seen[uid] = true
	}
	for _, x := range []ExamUIDs{u, other} {
		check("study", x.Study)
		for _, s := range []SeriesUIDs{x.ForPresentation, x.ForProcessing} {
			check("series", s.Series)
			for _, v := range bildrum.StandardViews() {
				check("instance "+v, s.Instances[v])
			}
		}
		if len(x.AccessionNumber) == 0 || len(x.AccessionNumber) > 16 || len(x.StudyID) == 0 || len(x.StudyID) > 16 {
			t.Errorf("accession %q, study ID %q: want 1 to 16 characters", x.AccessionNumber, x.StudyID)
		}
	}
	if u.Study != again.Study || u.ForProcessing.Instances["LMLO"] != again.ForProcessing.Instances["LMLO"] {
		t.Errorf("StudyUIDs is not deterministic: %+v, then %+v", u, again)
	}
	if u.AccessionNumber == other.AccessionNumber {
		t.Errorf("two episodes share accession number %q", u.AccessionNumber)
	}
}

func TestMammogramsAttributes(t *testing.T) {
	e := swedishEpisode(t)
	for _, processing := range []bool{false, true} {
		images, err := Mammograms(e, ImageOptions{Width: 128, ForProcessing: processing})
		if err != nil {
			t.Fatal(err)
		}
		uids := StudyUIDs(e)
		if len(images) != 4 {
			t.Fatalf("%d images, want 4", len(images))
		}
		for i, img := range images {
			want := map[tag.Tag]string{
				tag.PatientID:              string(e.Person),
				tag.PatientName:            patientName(e.Person),
				tag.PatientBirthDate:       strings.ReplaceAll(bildrum.DateOf(e.Person.BirthDate()).String(), "-", ""),
				tag.PatientSex:             "F",
				tag.StudyDate:              strings.ReplaceAll(e.Examined.String(), "-", ""),
				tag.SpecificCharacterSet:   "ISO_IR 192",
				tag.Modality:               "MG",
				tag.ImageLaterality:        img.View[:1],
				tag.StudyInstanceUID:       uids.Study,
				tag.SeriesInstanceUID:      uids.Series(processing).Series,
				tag.SOPInstanceUID:         uids.Series(processing).Instances[img.View],
				tag.AccessionNumber:        uids.AccessionNumber,
				tag.SOPClassUID:            map[bool]string{false: SOPClassMammoForPresentation, true: SOPClassMammoForProcessing}[processing],
				tag.PresentationIntentType: map[bool]string{false: "FOR PRESENTATION", true: "FOR PROCESSING"}[processing],
				tag.CodeValue:              map[bool]string{false: "399162004", true: "399368009"}[strings.HasSuffix(img.View, "MLO")],
			}
			if img.View != bildrum.StandardViews()[i] {
				t.Errorf("image %d is %s, want %s", i, img.View, bildrum.StandardViews()[i])
			}
			p := parseImage(t, img)
			for tg, w := range want {
				if tg == tag.CodeValue {
					// The view code, inside ViewCodeSequence.
					seq, err := p.ds.FindElementByTag(tag.ViewCodeSequence)
					if err != nil {
						t.Fatal(err)
					}
					items := seq.Value.GetValue().([]*dicom.SequenceItemValue)
					got := ""
					for _, el := range items[0].GetValue().([]*dicom.Element) {
						if el.Tag == tag.CodeValue {
							got = dicom.MustGetStrings(el.Value)[0]
						}
					}
					if got != w {
						t.Errorf("%s: view code %q, want %q", img.View, got, w)
					}
					continue
				}
				if got := stringValue(t, p.ds, tg); got != w {
					t.Errorf("%s processing=%v: %s = %q, want %q", img.View, processing, tg, got, w)
				}
			}
		}
	}
}

func TestMammogramsDeterministic(t *testing.T) {
	eps := attendedEpisodes(t, 2)
	a, err := Mammograms(eps[0], ImageOptions{Width: 256})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Mammograms(eps[0], ImageOptions{Width: 256})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Mammograms(eps[1], ImageOptions{Width: 256})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s: two runs differ", a[i].View)
		}
		pa, pc := parseImage(t, a[i]), parseImage(t, c[i])
		if equalPixels(pa.pixels, pc.pixels) {
			t.Errorf("%s: episodes %s and %s have the same pixels", a[i].View, eps[0].ID, eps[1].ID)
		}
	}
}

func equalPixels(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// halfMeans returns the mean pixel value of the left and right halves.
func halfMeans(p parsed) (left, right float64) {
	var l, r float64
	for y := 0; y < p.rows; y++ {
		for x := 0; x < p.cols; x++ {
			v := float64(p.pixels[y*p.cols+x])
			if x < p.cols/2 {
				l += v
			} else {
				r += v
			}
		}
	}
	n := float64(p.rows * (p.cols / 2))
	return l / n, r / n
}

func TestMammogramsLateralityMirrored(t *testing.T) {
	for _, e := range attendedEpisodes(t, 3) {
		for _, processing := range []bool{false, true} {
			images, err := Mammograms(e, ImageOptions{Width: 200, ForProcessing: processing})
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range images {
				left, right := halfMeans(parseImage(t, img))
				// The chest wall, where the breast is, is on the left of a
				// left breast's image and on the right of a right one's.
				if img.View[0] == 'L' && left < 1.5*right || img.View[0] == 'R' && right < 1.5*left {
					t.Errorf("episode %s %s processing=%v: half means left %.0f, right %.0f: breast on the wrong side", e.ID, img.View, processing, left, right)
				}
			}
		}
	}
}

func TestMammogramsBreastOnDarkBackground(t *testing.T) {
	for _, e := range attendedEpisodes(t, 3) {
		images, err := Mammograms(e, ImageOptions{Width: 200})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range images {
			p := parseImage(t, img)
			dark, tissue := 0, 0
			for _, v := range p.pixels {
				switch {
				case v < 200:
					dark++
				case v > 800:
					tissue++
				}
			}
			n := len(p.pixels)
			// The breast fills a third to four fifths of the field.
			if dark < n/6 || tissue < n/4 {
				t.Errorf("%s %s: %d%% dark background, %d%% tissue; want a breast on a dark background", e.ID, img.View, 100*dark/n, 100*tissue/n)
			}
			// The corner away from the chest wall, at the bottom, is air.
			corner := p.pixels[(p.rows-1)*p.cols+p.cols-1]
			if img.View[0] == 'R' {
				corner = p.pixels[(p.rows-1)*p.cols]
			}
			if corner > 200 {
				t.Errorf("%s %s: bottom corner away from the chest wall is %d, want dark background", e.ID, img.View, corner)
			}
		}
	}
}

// breastMean is the mean of the values above the background.
func breastMean(p parsed) float64 {
	var sum float64
	n := 0
	for _, v := range p.pixels {
		if v > 200 {
			sum += float64(v)
			n++
		}
	}
	return sum / float64(max(n, 1))
}

func TestMammogramsDensityBrightens(t *testing.T) {
	eps := attendedEpisodes(t, 6)
	mean := func(d bildrum.Density) float64 {
		var sum float64
		n := 0
		for _, e := range eps {
			e.Density = d
			images, err := Mammograms(e, ImageOptions{Width: 160})
			if err != nil {
				t.Fatal(err)
			}
			for _, img := range images {
				sum += breastMean(parseImage(t, img))
				n++
			}
		}
		return sum / float64(n)
	}
	means := map[bildrum.Density]float64{}
	for _, d := range []bildrum.Density{"a", "b", "c", "d"} {
		means[d] = mean(d)
	}
	t.Logf("mean breast value by density: %v", means)
	if !(means["a"] < means["b"] && means["b"] < means["c"] && means["c"] < means["d"]) {
		t.Errorf("mean breast values %v: want them rising from density a to d", means)
	}
	if means["d"] < means["a"]*1.3 {
		t.Errorf("density d breasts (%.0f) are not clearly brighter than density a (%.0f)", means["d"], means["a"])
	}
}

func TestMammogramsSmallIsFullBlurred(t *testing.T) {
	// A small image is the same breast as the full one, not another: the
	// outline and the tissue agree where both are sampled.
	e := attendedEpisodes(t, 1)[0]
	e.Views = []string{bildrum.ViewLMLO}
	small, err := Mammograms(e, ImageOptions{Width: 208})
	if err != nil {
		t.Fatal(err)
	}
	full, err := Mammograms(e, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ps, pf := parseImage(t, small[0]), parseImage(t, full[0])
	if pf.cols != 3328 || pf.rows != 4096 {
		t.Fatalf("full image %d × %d, want 3328 × 4096", pf.cols, pf.rows)
	}
	// Average the full image over 16 × 16 blocks and compare.
	var diff, total float64
	for y := 0; y < ps.rows; y++ {
		for x := 0; x < ps.cols; x++ {
			var sum float64
			for dy := range 16 {
				for dx := range 16 {
					sum += float64(pf.pixels[(16*y+dy)*pf.cols+16*x+dx])
				}
			}
			diff += abs(sum/256 - float64(ps.pixels[y*ps.cols+x]))
			total += float64(ps.pixels[y*ps.cols+x])
		}
	}
	if rel := diff / total; rel > 0.1 {
		t.Errorf("small and full image differ by %.0f%% on average, want the same breast", 100*rel)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestWriteImages(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Seed: 2, Regions: []string{"12", "14"}}
	var calls [][2]int
	n, err := WriteImages(context.Background(), cfg, dir, ImageOptions{Width: 96}, 3, func(done, total int) {
		calls = append(calls, [2]int{done, total})
	})
	if err != nil || n != 3 {
		t.Fatalf("WriteImages = %d, %v; want 3 examinations", n, err)
	}
	if len(calls) != 4 || calls[0] != [2]int{0, 3} || calls[3] != [2]int{3, 3} {
		t.Errorf("progress calls %v, want 0/3 … 3/3", calls)
	}
	files := listFiles(t, dir)
	if len(files) != 12 {
		t.Fatalf("%d files, want 12: %v", len(files), files)
	}
	regions := map[string]int{}
	for _, f := range files {
		parts := strings.Split(f, string(filepath.Separator))
		if len(parts) != 4 || parts[0] != ImagesDir || !uidPattern.MatchString(parts[2]) || !strings.HasSuffix(parts[3], ".dcm") {
			t.Errorf("file %s: want images/RR/STUDY-UID/VIEW.dcm", f)
			continue
		}
		regions[parts[1]]++
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		view := strings.TrimSuffix(parts[3], ".dcm")
		p := parseImage(t, Image{View: view, Data: b})
		if got := stringValue(t, p.ds, tag.StudyInstanceUID); got != parts[2] {
			t.Errorf("file %s has study %s", f, got)
		}
	}
	// Regions in turn: 12, 14, 12.
	if regions["12"] != 8 || regions["14"] != 4 {
		t.Errorf("files per region %v, want 8 in 12 and 4 in 14", regions)
	}

	// Again: the same files, nothing else.
	if _, err := WriteImages(context.Background(), cfg, dir, ImageOptions{Width: 96}, 3, nil); err != nil {
		t.Fatal(err)
	}
	if again := listFiles(t, dir); strings.Join(again, ",") != strings.Join(files, ",") {
		t.Errorf("second run left %v, want %v", again, files)
	}
}

func TestWriteImagesCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := WriteImages(ctx, Config{Regions: []string{"12"}}, dir, ImageOptions{Width: 64}, 5, func(done, total int) {
		if done == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || n != 2 {
		t.Fatalf("WriteImages after cancel = %d, %v; want 2 and context.Canceled", n, err)
	}
	files := listFiles(t, dir)
	if len(files) != 8 {
		t.Errorf("after cancel: %d files %v, want the 8 of the two whole examinations", len(files), files)
	}
	hidden, _ := filepath.Glob(filepath.Join(dir, ImagesDir, "*", ".tmp-*"))
	if len(hidden) != 0 {
		t.Errorf("temporary directories left: %v", hidden)
	}
}

func TestWriteImagesBadInput(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		opt  ImageOptions
		n    int
		want string
	}{
		{"negative count", Config{}, ImageOptions{}, -1, "want 0"},
		{"bad width", Config{}, ImageOptions{Width: 5}, 1, "image width 5"},
		{"bad region", Config{Regions: []string{"99"}}, ImageOptions{}, 1, "unknown region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := WriteImages(context.Background(), tt.cfg, dir, tt.opt, tt.n, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || bildrum.ErrorCode(err) != bildrum.EINVALID {
				t.Errorf("WriteImages = %v, want EINVALID %q", err, tt.want)
			}
			if files := listFiles(t, dir); len(files) != 0 {
				t.Errorf("wrote %v", files)
			}
		})
	}
}

// listFiles returns the regular files under dir, relative to it, sorted.
func listFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkMammograms reports how fast examinations are made, per image
// and in MB of DICOM per second, at full size and at demo sizes.
func BenchmarkMammograms(b *testing.B) {
	e := attendedEpisodes(b, 1)[0]
	for _, bc := range []struct {
		name string
		opt  ImageOptions
	}{
		{"full", ImageOptions{}},
		{"full-processing", ImageOptions{ForProcessing: true}},
		{"w512", ImageOptions{Width: 512}},
		{"w256", ImageOptions{Width: 256}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var bytes int64
			images := 0
			for b.Loop() {
				imgs, err := Mammograms(e, bc.opt)
				if err != nil {
					b.Fatal(err)
				}
				for _, img := range imgs {
					bytes += int64(len(img.Data))
				}
				images += len(imgs)
			}
			b.SetBytes(bytes / int64(b.N))
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
