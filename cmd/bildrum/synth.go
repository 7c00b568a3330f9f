package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/bildrum/bildrum"
	"github.com/bildrum/bildrum/sqlstore"
	"github.com/bildrum/bildrum/synth"
)

// synthBatch is how many episodes go into the node store per transaction.
const synthBatch = 5000

func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	var (
		cfg               synth.Config
		regions, from, to string
		out, dsn          string
		images            int
		imageOpt          synth.ImageOptions
	)
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed: the same seed gives the same population")
	fs.StringVar(&regions, "regions", "01,12,14", "comma-separated county codes of the regions to populate")
	fs.StringVar(&from, "from", "2014-01-01", "first day of the simulated period")
	fs.StringVar(&to, "to", "2025-12-31", "last day of the simulated period")
	fs.IntVar(&cfg.Generate, "generate", 0, "add this many generated (non-official) numbers, for benchmarks only: such data must never leave the machine")
	fs.StringVar(&out, "out", "", "write register-RR.csv per region and metadata.json into this directory")
	fs.StringVar(&dsn, "db", "", "write the rows straight into this node database (SQLite file or postgres:// URL); needs exactly one region")
	fs.IntVar(&images, "images", 0, "with -out: also write the four-view mammograms (DICOM) of up to this many examinations into DIR/images/RR/STUDY-UID/VIEW.dcm")
	fs.IntVar(&imageOpt.Width, "image-width", 0, "image width in pixels, 64 to 3328 (the height follows); 0 for the full detector, 3328 × 4096 pixels, about 27 MB an image")
	fs.BoolVar(&imageOpt.ForProcessing, "for-processing", false, "write For Processing (raw) images instead of For Presentation ones")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if (out == "") == (dsn == "") {
		return usageError{"synth: give either -out DIR (files) or -db DSN (a node's database)"}
	}
	if images < 0 {
		return usageError{"synth: -images: want the number of examinations to image, 0 or more"}
	}
	if images > 0 && out == "" {
		return usageError{"synth: -images writes files: give -out DIR instead of -db"}
	}
	if images == 0 && imageOpt != (synth.ImageOptions{}) {
		return usageError{"synth: -image-width and -for-processing shape the images of -images N: give -images too"}
	}
	if w := imageOpt.Width; w != 0 && (w < synth.MinWidth || w > synth.FullWidth) {
		return usageError{fmt.Sprintf("synth: -image-width %d: want 0 (full size) or %d to %d pixels", w, synth.MinWidth, synth.FullWidth)}
	}
	cfg.Regions = strings.Split(regions, ",")
	var err error
	if cfg.From, err = bildrum.ParseDate(from); err != nil {
		return usageError{"synth: -from: " + bildrum.ErrorMessage(err)}
	}
	if cfg.To, err = bildrum.ParseDate(to); err != nil {
		return usageError{"synth: -to: " + bildrum.ErrorMessage(err)}
	}
	women, err := synth.Women(cfg)
	if err != nil {
		return err
	}
	bar := newProgress(stderr, len(women), "synthetic women")
	var meta synth.Metadata
	if out != "" {
		done := 0
		meta, err = synth.WriteFiles(ctx, cfg, out, func(d, total int) {
			bar.Add(d - done)
			done = d
		})
	} else {
		meta, err = synthIntoStore(ctx, cfg, dsn, bar)
	}
	if err != nil {
		return err
	}
	bar.Finish()
	for _, r := range meta.Regions {
		fmt.Fprintf(stdout, "region %s: %d women, %d register rows\n", r, meta.Women[r], meta.Episodes[r])
	}
	if meta.Synthetic {
		fmt.Fprintf(stdout, "note: %d generated numbers that may belong to real people: keep this data set on this machine\n", meta.GeneratedNumbers)
	}
	if images > 0 {
		return synthImages(ctx, cfg, out, imageOpt, images, stdout, stderr)
	}
	return nil
}

// synthImages writes the mammograms of up to n examinations under out.
func synthImages(ctx context.Context, cfg synth.Config, out string, opt synth.ImageOptions, n int, stdout, stderr io.Writer) error {
	var bar *progress
	done := 0
	exams, err := synth.WriteImages(ctx, cfg, out, opt, n, func(d, total int) {
		if bar == nil {
			bar = newProgress(stderr, total, "synthetic examinations")
		}
		bar.Add(d - done)
		done = d
	})
	if err != nil {
		return err
	}
	if bar != nil {
		bar.Finish()
	}
	kind := "for presentation"
	if opt.ForProcessing {
		kind = "for processing"
	}
	fmt.Fprintf(stdout, "images: %d examinations, %d mammograms (%s) in %s\n", exams, 4*exams, kind, filepath.Join(out, synth.ImagesDir))
	return nil
}

// synthIntoStore writes the population of one region into a node database,
// in batches, so memory stays flat whatever the population's size.
func synthIntoStore(ctx context.Context, cfg synth.Config, dsn string, bar *progress) (synth.Metadata, error) {
	if len(cfg.Regions) != 1 {
		return synth.Metadata{}, usageError{"synth: -db writes one node's register: give exactly one region with -regions"}
	}
	db, err := sqlstore.Open(ctx, dsn, sqlstore.PartNode)
	if err != nil {
		return synth.Metadata{}, err
	}
	defer db.Close()
	batch := make([]bildrum.ScreeningEpisode, 0, synthBatch)
	flush := func() error {
		if _, err := db.PutEpisodes(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	var last bildrum.PersonID
	meta, err := synth.Generate(ctx, cfg, func(e bildrum.ScreeningEpisode) error {
		if e.Person != last {
			last = e.Person
			bar.Add(1)
			if len(batch) >= synthBatch {
				return flush()
			}
		}
		batch = append(batch, e)
		return nil
	})
	if err != nil {
		return meta, err
	}
	return meta, flush()
}
