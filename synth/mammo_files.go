package synth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/bildrum/bildrum"
)

// ImagesDir is the directory inside WriteImages' dir that holds the images.
const ImagesDir = "images"

// ImagePath returns where WriteImages puts an image, relative to its dir:
// images/<region>/<StudyInstanceUID>/<view>.dcm.
func ImagePath(region, studyUID, view string) string {
	return filepath.Join(ImagesDir, region, studyUID, view+".dcm")
}

// WriteImages writes the synthetic mammograms of up to maxExams attended
// examinations of the population of cfg into dir, at ImagePath, replacing
// files of those names, and returns how many examinations it wrote.
//
// The examinations are taken region by region in turn (county code order),
// each region's in the order Generate emits them, so a few women's
// successive screens come out and their priors can be compared. A region
// with fewer examinations simply gives fewer.
//
// Each examination's files are written and synced in a temporary directory
// beside its final one and renamed into place only when all its views are
// complete: an error or the end of ctx leaves no partial file, and an
// examination either has all its views or keeps what it had. progress, when
// not nil, is called with the number of examinations done out of the total,
// first with done = 0 and then after each examination.
//
// A bad Config or ImageOptions, or a negative maxExams, is an EINVALID
// error; maxExams 0 writes nothing.
func WriteImages(ctx context.Context, cfg Config, dir string, opt ImageOptions, maxExams int, progress func(done, total int)) (int, error) {
	if _, _, _, err := opt.size(); err != nil {
		return 0, err
	}
	if maxExams < 0 {
		return 0, bildrum.Errorf(bildrum.EINVALID, "%d examinations: want 0 (no images) or more", maxExams)
	}
	exams, err := pickExams(ctx, cfg, maxExams)
	if err != nil {
		return 0, err
	}
	if progress != nil {
		progress(0, len(exams))
	}
	// The next examination is drawn while this one is written.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	made := make(chan examImages, 1)
	wg.Go(func() {
		defer close(made)
		for _, e := range exams {
			if ctx.Err() != nil {
				return
			}
			images, err := Mammograms(e, opt)
			select {
			case made <- examImages{e, images, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	done := 0
	for ex := range made {
		if ex.err != nil {
			return done, ex.err
		}
		if err := ctx.Err(); err != nil {
			return done, fmt.Errorf("synth: images: %w", err)
		}
		if err := writeExam(ctx, dir, ex.e, ex.images); err != nil {
			return done, err
		}
		done++
		if progress != nil {
			progress(done, len(exams))
		}
	}
	if err := ctx.Err(); err != nil {
		return done, fmt.Errorf("synth: images: %w", err)
	}
	return done, nil
}

// examImages are the images of an examination, or the error making them.
type examImages struct {
	e      bildrum.ScreeningEpisode
	images []Image
	err    error
}

// pickExams returns up to n attended episodes of the population, taking the
// regions in turn.
func pickExams(ctx context.Context, cfg Config, n int) ([]bildrum.ScreeningEpisode, error) {
	if n == 0 {
		return nil, nil
	}
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	perRegion := make(map[string][]bildrum.ScreeningEpisode, len(p.regions))
	if _, err := p.run(ctx, func(e bildrum.ScreeningEpisode) error {
		if e.Attended && len(perRegion[e.Region]) < n {
			perRegion[e.Region] = append(perRegion[e.Region], e)
		}
		return nil
	}, nil); err != nil {
		return nil, err
	}
	var out []bildrum.ScreeningEpisode
	for k := 0; len(out) < n; k++ {
		took := false
		for _, r := range p.regions {
			if k < len(perRegion[r]) && len(out) < n {
				out = append(out, perRegion[r][k])
				took = true
			}
		}
		if !took {
			break
		}
	}
	return out, nil
}

// writeExam writes one examination's images: into a temporary directory,
// then renamed into place once all are on disk.
func writeExam(ctx context.Context, dir string, e bildrum.ScreeningEpisode, images []Image) (err error) {
	if len(images) == 0 {
		return nil
	}
	final := filepath.Join(dir, filepath.Dir(ImagePath(e.Region, images[0].StudyInstanceUID, images[0].View)))
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("synth: images: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-*")
	if err != nil {
		return fmt.Errorf("synth: images: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("synth: images: %w", rerr)
		}
	}()
	for _, img := range images {
		if err := writeSynced(filepath.Join(tmp, img.View+".dcm"), img.Data); err != nil {
			return fmt.Errorf("synth: images of episode %s: %w", e.ID, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("synth: images: %w", err)
	}
	if err := os.MkdirAll(final, 0o755); err != nil {
		return fmt.Errorf("synth: images: %w", err)
	}
	// From here on the renames run to the end whatever ctx says, so the
	// examination is whole.
	var errs []error
	for _, img := range images {
		if err := os.Rename(filepath.Join(tmp, img.View+".dcm"), filepath.Join(final, img.View+".dcm")); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("synth: images of episode %s: %w", e.ID, err)
	}
	return nil
}

// writeSynced writes a file and syncs it to disk.
func writeSynced(name string, data []byte) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
