package synth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/register"
)

// MetadataFile is the name of the metadata file WriteFiles writes.
const MetadataFile = "metadata.json"

// RegisterFile returns the name of a region's register file, such as
// "register-12.csv".
func RegisterFile(region string) string { return "register-" + region + ".csv" }

// WriteFiles generates the population of cfg into dir, which it creates if
// needed: one register CSV per region (RegisterFile, in the format of
// register.WriteCSV) and MetadataFile, replacing files of those names.
// Files of regions not in cfg are left alone.
//
// The files are written to a temporary directory inside dir and renamed into
// place only when all are complete, so an error or the end of ctx leaves no
// partial file. progress, when not nil, is called with the number of women
// done out of the total, first with done = 0 and then after each woman.
func WriteFiles(ctx context.Context, cfg Config, dir string, progress func(done, total int)) (Metadata, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return Metadata{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Metadata{}, fmt.Errorf("synth: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".synth-*")
	if err != nil {
		return Metadata{}, fmt.Errorf("synth: %w", err)
	}
	defer os.RemoveAll(tmp)

	md, err := writeRegisters(ctx, p, tmp, progress)
	if err != nil {
		return Metadata{}, err
	}
	b, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return Metadata{}, fmt.Errorf("synth: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, MetadataFile), append(b, '\n')); err != nil {
		return Metadata{}, err
	}
	if err := ctx.Err(); err != nil {
		return Metadata{}, fmt.Errorf("synth: %w", err)
	}
	names := []string{MetadataFile}
	for _, r := range p.regions {
		names = append(names, RegisterFile(r))
	}
	for _, name := range names {
		if err := os.Rename(filepath.Join(tmp, name), filepath.Join(dir, name)); err != nil {
			return Metadata{}, fmt.Errorf("synth: %w", err)
		}
	}
	return md, nil
}

// writeRegisters writes every region's register CSV into dir.
func writeRegisters(ctx context.Context, p plan, dir string, progress func(done, total int)) (md Metadata, err error) {
	writers := make(map[string]*csvFile, len(p.regions))
	defer func() {
		for _, f := range writers {
			err = errors.Join(err, f.close())
		}
		if err != nil {
			md = Metadata{}
		}
	}()
	for _, r := range p.regions {
		f, err := createCSV(filepath.Join(dir, RegisterFile(r)))
		if err != nil {
			return Metadata{}, err
		}
		writers[r] = f
	}
	total, done := p.total(), 0
	var onDone func()
	if progress != nil {
		progress(0, total)
		onDone = func() { done++; progress(done, total) }
	}
	return p.run(ctx, func(e bildrum.ScreeningEpisode) error {
		return writers[e.Region].w.Write(e)
	}, onDone)
}

// csvFile is a register file being written.
type csvFile struct {
	f *os.File
	w *register.CSVWriter
}

// createCSV creates the file and writes the header.
func createCSV(name string) (*csvFile, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	w, err := register.NewCSVWriter(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("synth: %w", err)
	}
	return &csvFile{f: f, w: w}, nil
}

// close flushes, syncs and closes the file.
func (c *csvFile) close() error {
	err := c.w.Flush()
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("synth: %s: %w", filepath.Base(c.f.Name()), err)
	}
	return nil
}

// writeFileSync writes a file and syncs it to disk.
func writeFileSync(name string, data []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("synth: %s: %w", filepath.Base(name), err)
	}
	return nil
}
