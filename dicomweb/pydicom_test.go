package dicomweb_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum/internal/testenv"
)

// pydicomData is where Debian's python3-pydicom keeps its test files:
// third-party DICOM from many vendors and toolkits, in many transfer
// syntaxes and character sets (pydicom/data/test_files/README.txt).
const pydicomData = "/usr/lib/python3/dist-packages/pydicom/data"

// pydicomRefused are the files of pydicom's test data that a STOW-RS
// server must refuse, and what the reason says.
var pydicomRefused = map[string]string{
	"ExplVR_BigEndNoMeta.dcm":  "no DICM prefix",
	"ExplVR_LitEndNoMeta.dcm":  "no DICM prefix",
	"no_meta.dcm":              "no DICM prefix",
	"rtstruct.dcm":             "no DICM prefix",
	"MR_truncated.dcm":         "truncated",
	"rtplan_truncated.dcm":     "truncated",
	"meta_missing_tsyntax.dcm": "no Transfer Syntax UID",
	"no_meta_group_length.dcm": "MetaElementGroupLength",
	"SC_rgb_jpeg.dcm":          "no valid VR", // declares explicit VR, is implicit
	"UN_sequence.dcm":          "(0008,1115)", // the parser cannot read a UN sequence
	"chrSQEncoding.dcm":        "lacks",
	"chrSQEncoding1.dcm":       "lacks",
	"empty_charset_LEI.dcm":    "lacks",
	"nested_priv_SQ.dcm":       "lacks",
	"priv_SQ.dcm":              "lacks",
	"rtdose_rle.dcm":           "lacks",
	"rtdose_rle_1frame.dcm":    "lacks",
	"fall.dcm":                 "lacks", // palettes: no study or series
	"hotiron.dcm":              "lacks",
	"hotmetalblue.dcm":         "lacks",
	"pet.dcm":                  "lacks",
	"pet20step.dcm":            "lacks",
	"spring.dcm":               "lacks",
	"summer.dcm":               "lacks",
	"winter.dcm":               "lacks",
}

// TestPydicomFiles stores each of pydicom's test files into a fresh node
// and checks that the well-formed ones come back byte for byte, and that
// the others are refused with a reason that says why.
func TestPydicomFiles(t *testing.T) {
	testenv.RequirePythonModule(t, "pydicom")
	files, _ := filepath.Glob(filepath.Join(pydicomData, "*", "*.dcm"))
	if len(files) < 50 {
		testenv.Unavailable(t, "pydicom's test files are not in %s", pydicomData)
	}
	ctx := context.Background()
	stored := 0
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			n := newNode(t, "")
			res, err := n.client.Store(ctx, "", data)
			if err != nil {
				t.Fatal(err)
			}
			if want, refused := pydicomRefused[name]; refused {
				reason := strings.Join(res.Reasons, "; ")
				if res.Status != http.StatusConflict || !strings.Contains(reason, want) {
					t.Errorf("Store(%s) = status %d, reason %q; want 409 saying %q", name, res.Status, reason, want)
				}
				return
			}
			if res.Status != http.StatusOK || len(res.Referenced) != 1 {
				t.Fatalf("Store(%s) = status %d, %+v; want 200", name, res.Status, res.Response)
			}
			found, err := n.client.Search(ctx, "instances", nil)
			if err != nil || len(found) != 1 {
				t.Fatalf("Search(instances) = %v, %v", found, err)
			}
			parts, err := n.client.Retrieve(ctx, strings.TrimPrefix(found[0].String("00081190"), n.base+"/"))
			if err != nil || len(parts) != 1 || sha(parts[0]) != sha(data) {
				t.Fatalf("Retrieve(%s) = %d parts, %v; want the file byte for byte", name, len(parts), err)
			}
			md, err := n.client.Metadata(ctx, strings.TrimPrefix(found[0].String("00081190"), n.base+"/"))
			if err != nil || len(md) != 1 || len(md[0]) < 5 {
				t.Errorf("Metadata(%s) = %v, %v; want its attributes", name, md, err)
			}
			stored++
		})
	}
	if stored < 45 {
		t.Errorf("stored %d of pydicom's files, want at least 45", stored)
	}
}
