package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a progress bar on a terminal, and two plain lines otherwise,
// so logs of non-interactive runs stay readable.
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	title string
	total int
}

func newProgress(w io.Writer, total int, title string) *progress {
	p := &progress{w: w, title: title, total: total}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(title),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		)
	} else {
		fmt.Fprintf(w, "%s: %d to do\n", title, total)
	}
	return p
}

// Add records n more done.
func (p *progress) Add(n int) {
	if p.bar != nil {
		p.bar.Add(n)
	}
}

// Finish ends the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	fmt.Fprintf(p.w, "%s: done\n", p.title)
}
