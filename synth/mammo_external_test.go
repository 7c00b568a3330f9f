package synth

// Tests of the synthetic mammograms against independent DICOM tools: the
// validator dciodvfy (dicom3tools), DCMTK's dcmdump and pydicom. They skip
// when the tools are missing, and fail instead under `make test`
// (BILDRUM_REQUIRE_EXTERNAL=1).

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/internal/testenv"
)

// examImagesCache holds the images the external tests share, by episode
// and options: made once, they are written out by each test.
var examImagesCache struct {
	sync.Mutex
	images map[string][]Image
}

// writeExamFiles writes the images of e into a new directory and returns
// their paths and the images.
func writeExamFiles(t *testing.T, e bildrum.ScreeningEpisode, opt ImageOptions) ([]string, []Image) {
	t.Helper()
	c := &examImagesCache
	key := fmt.Sprintf("%s %+v", e.ID, opt)
	c.Lock()
	images, ok := c.images[key]
	if !ok {
		var err error
		if images, err = Mammograms(e, opt); err != nil {
			c.Unlock()
			t.Fatal(err)
		}
		if c.images == nil {
			c.images = make(map[string][]Image)
		}
		c.images[key] = images
	}
	c.Unlock()
	dir := t.TempDir()
	var paths []string
	for _, img := range images {
		p := filepath.Join(dir, fmt.Sprintf("%s-%s.dcm", img.View, map[bool]string{false: "presentation", true: "processing"}[opt.ForProcessing]))
		if err := os.WriteFile(p, img.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths, images
}

// examCases are the files the external tools check: all four views of a
// small examination, and a full-size one, in both SOP classes.
func examCases() []struct {
	name string
	opt  ImageOptions
} {
	return []struct {
		name string
		opt  ImageOptions
	}{
		{"w256 presentation", ImageOptions{Width: 256}},
		{"w256 processing", ImageOptions{Width: 256, ForProcessing: true}},
		{"full presentation", ImageOptions{}},
		{"full processing", ImageOptions{ForProcessing: true}},
	}
}

// TestMammogramsDciodvfy validates every view against the Digital
// Mammography X-Ray Image IOD with dciodvfy: no errors allowed. The one
// warning we accept is View Position (0018,5101) CC/MLO, which is not among
// the DX defined terms but which vendors write and hanging protocols read.
func TestMammogramsDciodvfy(t *testing.T) {
	dciodvfy := testenv.RequireExternal(t, "dciodvfy")
	e := swedishEpisode(t)
	for _, tc := range examCases() {
		t.Run(tc.name, func(t *testing.T) {
			paths, _ := writeExamFiles(t, e, tc.opt)
			for _, p := range paths {
				out, _ := exec.Command(dciodvfy, p).CombinedOutput()
				var errs, warnings []string
				for _, line := range strings.Split(string(out), "\n") {
					switch {
					case strings.HasPrefix(line, "Error"):
						errs = append(errs, line)
					case strings.HasPrefix(line, "Warning") && !strings.Contains(line, "<View Position>"):
						warnings = append(warnings, line)
					}
				}
				if len(errs) > 0 {
					t.Errorf("dciodvfy %s: %d errors:\n%s", filepath.Base(p), len(errs), out)
				}
				if len(warnings) > 0 {
					t.Errorf("dciodvfy %s: unexpected warnings:\n%s", filepath.Base(p), out)
				}
				wantIOD := "MammographyImageForPresentation"
				if tc.opt.ForProcessing {
					wantIOD = "MammographyImageForProcessing"
				}
				if !strings.Contains(string(out), wantIOD) {
					t.Errorf("dciodvfy %s did not check it as %s:\n%s", filepath.Base(p), wantIOD, out)
				}
			}
		})
	}
}

// TestMammogramsDcmdump reads every file with DCMTK's dcmdump.
func TestMammogramsDcmdump(t *testing.T) {
	dcmdump := testenv.RequireExternal(t, "dcmdump")
	e := swedishEpisode(t)
	for _, tc := range examCases() {
		t.Run(tc.name, func(t *testing.T) {
			paths, _ := writeExamFiles(t, e, tc.opt)
			cols, rows, _, _ := tc.opt.size()
			for _, p := range paths {
				cmd := exec.Command(dcmdump, "-M", p) // -M: load short tags only, no pixel dump
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil || stderr.Len() > 0 {
					t.Errorf("dcmdump %s: %v\n%s", filepath.Base(p), err, stderr.String())
				}
				wantPixels := fmt.Sprintf("(7fe0,0010) OW (not loaded)                             # %d,", 2*rows*cols)
				if !strings.Contains(string(out), wantPixels) {
					t.Errorf("dcmdump %s: no Pixel Data of %d bytes:\n%s", filepath.Base(p), 2*rows*cols, out)
				}
			}
		})
	}
}

// pydicomScript prints, for each file named on the command line, the
// attributes the test compares, as one JSON object per line.
const pydicomScript = `
import json, sys
import pydicom
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    px = ds.pixel_array
    print(json.dumps({
        "PatientID": ds.PatientID,
        "PatientName": str(ds.PatientName),
        "StudyDate": ds.StudyDate,
        "ImageLaterality": ds.ImageLaterality,
        "ViewCode": ds.ViewCodeSequence[0].CodeValue,
        "ViewScheme": ds.ViewCodeSequence[0].CodingSchemeDesignator,
        "Rows": ds.Rows,
        "Columns": ds.Columns,
        "Shape": list(px.shape),
        "Max": int(px.max()),
        "SOPClassUID": ds.SOPClassUID,
    }, ensure_ascii=False))
`

// TestMammogramsPydicom reads every file with pydicom (Debian's, for
// /usr/bin/python3) and compares what it decodes, the Swedish letters of
// the name included.
func TestMammogramsPydicom(t *testing.T) {
	python := testenv.RequirePythonModule(t, "pydicom")
	e := swedishEpisode(t)
	wantName := patientName(e.Person)
	for _, tc := range examCases() {
		t.Run(tc.name, func(t *testing.T) {
			paths, images := writeExamFiles(t, e, tc.opt)
			cmd := exec.Command(python, append([]string{"-c", pydicomScript}, paths...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("pydicom: %v\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(images) {
				t.Fatalf("pydicom printed %d lines for %d files:\n%s", len(lines), len(images), out)
			}
			cols, rows, _, _ := tc.opt.size()
			maxValue := 1<<presentationBits - 1
			if tc.opt.ForProcessing {
				maxValue = 1<<processingBits - 1
			}
			for i, line := range lines {
				var got struct {
					PatientID, PatientName, StudyDate, ImageLaterality string
					ViewCode, ViewScheme, SOPClassUID                  string
					Rows, Columns, Max                                 int
					Shape                                              []int
				}
				if err := json.Unmarshal([]byte(line), &got); err != nil {
					t.Fatalf("pydicom output %q: %v", line, err)
				}
				img := images[i]
				wantCode := "399162004"
				if strings.HasSuffix(img.View, "MLO") {
					wantCode = "399368009"
				}
				checks := []struct {
					what      string
					got, want any
				}{
					{"PatientID", got.PatientID, string(e.Person)},
					{"PatientName", got.PatientName, wantName},
					{"StudyDate", got.StudyDate, strings.ReplaceAll(e.Examined.String(), "-", "")},
					{"ImageLaterality", got.ImageLaterality, img.View[:1]},
					{"ViewCodeSequence[0].CodeValue", got.ViewCode, wantCode},
					{"ViewCodeSequence[0].CodingSchemeDesignator", got.ViewScheme, "SCT"},
					{"Rows", got.Rows, rows},
					{"Columns", got.Columns, cols},
					{"pixel_array shape", fmt.Sprint(got.Shape), fmt.Sprint([]int{rows, cols})},
					{"SOPClassUID", got.SOPClassUID, img.SOPClassUID},
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("%s: pydicom reads %s = %v, want %v", img.View, c.what, c.got, c.want)
					}
				}
				if got.Max <= 0 || got.Max > maxValue {
					t.Errorf("%s: pixel maximum %d, want 1 to %d", img.View, got.Max, maxValue)
				}
			}
		})
	}
}
