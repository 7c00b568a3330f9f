package synth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bildrum/bildrum/internal/testenv"

	"github.com/bildrum/bildrum"
)

// hashDir returns the SHA-256 of every file in dir, by name.
func hashDir(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][32]byte)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func TestWriteFilesDeterministic(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"generated", Config{Seed: -5, Regions: []string{"25", "03"}, Generate: 2000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := t.TempDir(), t.TempDir()
			if _, err := WriteFiles(context.Background(), tt.cfg, a, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := WriteFiles(context.Background(), tt.cfg, b, nil); err != nil {
				t.Fatal(err)
			}
			ha, hb := hashDir(t, a), hashDir(t, b)
			if !reflect.DeepEqual(ha, hb) {
				t.Errorf("two runs of %+v differ", tt.cfg)
			}
			other := tt.cfg
			other.Seed++
			c := t.TempDir()
			if _, err := WriteFiles(context.Background(), other, c, nil); err != nil {
				t.Fatal(err)
			}
			hc := hashDir(t, c)
			for name, h := range ha {
				if strings.HasSuffix(name, ".csv") && hc[name] == h {
					t.Errorf("%s is the same with seed %d and %d", name, tt.cfg.Seed, other.Seed)
				}
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	var calls, lastDone, lastTotal int
	md, err := WriteFiles(context.Background(), Config{Seed: 3}, dir, func(done, total int) {
		if done != lastDone+1 && calls > 0 || done > total {
			t.Errorf("progress(%d, %d) after (%d, %d)", done, total, lastDone, lastTotal)
		}
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}
	if lastDone != lastTotal || lastTotal == 0 || calls != lastTotal+1 {
		t.Errorf("progress ended at (%d, %d) after %d calls, want (n, n) after n+1", lastDone, lastTotal, calls)
	}
	names := []string{"metadata.json", "register-01.csv", "register-12.csv", "register-14.csv"}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("files %v, want %v", got, names)
	}

	var stored Metadata
	b, err := os.ReadFile(filepath.Join(dir, MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored, md) {
		t.Errorf("metadata.json = %+v, want %+v", stored, md)
	}

	women := 0
	for _, r := range md.Regions {
		f, err := os.Open(filepath.Join(dir, RegisterFile(r)))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", RegisterFile(r), err)
		}
		if !slices.Equal(rows[0], EpisodeCSVHeader()) {
			t.Errorf("%s header = %v, want %v", RegisterFile(r), rows[0], EpisodeCSVHeader())
		}
		if len(rows)-1 != md.Episodes[r] {
			t.Errorf("%s has %d rows, metadata says %d", RegisterFile(r), len(rows)-1, md.Episodes[r])
		}
		for _, row := range rows[1:] {
			if row[2] != r {
				t.Fatalf("%s: row of region %s", RegisterFile(r), row[2])
			}
		}
		women += md.Women[r]
	}
	if women != lastTotal {
		t.Errorf("metadata counts %d women, progress %d", women, lastTotal)
	}
}

func TestWriteFilesLeavesNothingPartial(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(done, total int) bool
	}{
		{"cancelled at start", func(done, total int) bool { return done == 0 }},
		{"cancelled midway", func(done, total int) bool { return done == total/2 }},
		{"cancelled at the last woman", func(done, total int) bool { return done == total }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// A register of an earlier run must survive a failed one whole.
			old := []byte("earlier run\n")
			if err := os.WriteFile(filepath.Join(dir, RegisterFile("12")), old, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := WriteFiles(ctx, Config{}, dir, func(done, total int) {
				if tt.cancel(done, total) {
					cancel()
				}
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("WriteFiles cancelled = %v, want context.Canceled", err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != RegisterFile("12") {
				t.Errorf("files left after cancel: %v, want only the earlier %s", entries, RegisterFile("12"))
			}
			if b, _ := os.ReadFile(filepath.Join(dir, RegisterFile("12"))); !bytes.Equal(b, old) {
				t.Errorf("earlier register changed to %.40q…", b)
			}
		})
	}
}

func TestWriteFilesBadConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	_, err := WriteFiles(context.Background(), Config{Regions: []string{"99"}}, dir, nil)
	if bildrum.ErrorCode(err) != bildrum.EINVALID {
		t.Fatalf("WriteFiles(region 99) = %v, want EINVALID", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("WriteFiles with a bad config created %s", dir)
	}
}

// TestEmbeddedListsMatchShared checks that data/ holds the shared open-data
// files unchanged.
func TestEmbeddedListsMatchShared(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "data")
	if _, err := os.Stat(shared); os.IsNotExist(err) {
		testenv.Unavailable(t, "%s is absent: nothing to compare the embedded lists with", shared)
		return
	}
	tests := []struct {
		name     string
		embedded string
	}{
		{"skatteverket_test_personnummer.txt", testPersonnummer},
		{"skatteverket_test_samordningsnummer.txt", testSamordningsnummer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(shared, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if tt.embedded != string(want) {
				t.Errorf("embedded %s (%d bytes) differs from %s (%d bytes)", tt.name, len(tt.embedded), shared, len(want))
			}
			if !strings.HasPrefix(tt.embedded, "# Skatteverket") {
				t.Errorf("embedded %s lost its header comment", tt.name)
			}
		})
	}
}
