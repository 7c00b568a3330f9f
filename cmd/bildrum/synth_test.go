package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bildrum/bildrum/sqlstore"
)

func TestSynthCommandWritesFiles(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"synth", "-out", dir, "-regions", "12,14", "-seed", "3"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("synth -out: exit %d, stderr %s", code, stderr.String())
	}
	for _, region := range []string{"12", "14"} {
		f, err := os.Open(filepath.Join(dir, "register-"+region+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		records, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(records) < 500 {
			t.Errorf("register-%s.csv has %d lines, want a real register", region, len(records))
		}
		if !strings.Contains(stdout.String(), "region "+region+": ") {
			t.Errorf("stdout %q does not report region %s", stdout.String(), region)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		t.Errorf("metadata.json: %v", err)
	}
	if !strings.Contains(stderr.String(), "synthetic women") {
		t.Errorf("no progress on stderr: %q", stderr.String())
	}
}

func TestSynthCommandWritesANodeDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.db")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"synth", "-db", path, "-regions", "12"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("synth -db: exit %d, stderr %s", code, stderr.String())
	}
	db, err := sqlstore.Open(context.Background(), path, sqlstore.PartNode)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sum, err := db.RegisterSummary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Region != "12" || sum.Women < 100 || sum.Exams < 300 {
		t.Errorf("after synth -db: %+v, want region 12's register", sum)
	}
	want := "region 12: " + itoa(sum.Women) + " women, " + itoa(sum.Invitations) + " register rows"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	// Running it again changes nothing: the rows are keyed by episode ID.
	run(context.Background(), []string{"synth", "-db", path, "-regions", "12"}, &stdout, &stderr)
	again, _ := db.RegisterSummary(context.Background())
	if again.DataVersion != sum.DataVersion || again.Invitations != sum.Invitations {
		t.Errorf("second synth -db moved the register from %+v to %+v", sum, again)
	}
}

func TestSynthCommandWritesImages(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"synth", "-out", dir, "-regions", "12,14", "-images", "3", "-image-width", "64", "-for-processing"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("bildrum %v: exit %d, stderr %s", args, code, stderr.String())
	}
	files, err := filepath.Glob(filepath.Join(dir, "images", "*", "*", "*.dcm"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 12 {
		t.Errorf("%d image files %v, want the four views of 3 examinations", len(files), files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// A PS3.10 file, For Processing.
		if len(b) < 132 || string(b[128:132]) != "DICM" || !bytes.Contains(b, []byte("1.2.840.10008.5.1.4.1.1.1.2.1")) {
			t.Errorf("%s is not a For Processing mammogram", f)
		}
	}
	if want := "images: 3 examinations, 12 mammograms (for processing)"; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "synthetic examinations") {
		t.Errorf("no image progress on stderr: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "register-12.csv")); err != nil {
		t.Errorf("the register is not written with the images: %v", err)
	}
}

func TestSynthCommandBadInput(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantMsg  string
	}{
		{[]string{"synth"}, exitUsage, "give either -out DIR"},
		{[]string{"synth", "-out", "x", "-db", "y"}, exitUsage, "give either -out DIR"},
		{[]string{"synth", "-out", t.TempDir(), "-regions", "99"}, exitError, "unknown region"},
		{[]string{"synth", "-out", t.TempDir(), "-from", "2020-02-30"}, exitUsage, "want YYYY-MM-DD"},
		{[]string{"synth", "-db", filepath.Join(t.TempDir(), "x.db"), "-regions", "01,12"}, exitUsage, "exactly one region"},
		{[]string{"synth", "-db", filepath.Join(t.TempDir(), "x.db"), "-regions", "12", "-images", "2"}, exitUsage, "-images writes files"},
		{[]string{"synth", "-out", t.TempDir(), "-images", "-1"}, exitUsage, "-images: want"},
		{[]string{"synth", "-out", t.TempDir(), "-images", "1", "-image-width", "10"}, exitUsage, "-image-width 10"},
		{[]string{"synth", "-out", t.TempDir(), "-for-processing"}, exitUsage, "give -images too"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantMsg) {
				t.Errorf("bildrum %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantMsg)
			}
		})
	}
}
