package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a progress bar on a terminal, and two plain lines otherwise,
// so logs of non-interactive runs stay readable. Its methods are safe for
// concurrent use.
type progress struct {
	bar   *progressbar.ProgressBar
	w     io.Writer
	title string
	total int
	group *progressGroup // set when the bar is shared by several tasks
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newBar(w io.Writer, total int, title string) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(title),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
}

func newProgress(w io.Writer, total int, title string) *progress {
	p := &progress{w: w, title: title, total: total}
	if isTerminal(w) {
		p.bar = newBar(w, total, title)
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
	if p.group != nil {
		p.group.finish(p)
		return
	}
	if p.bar != nil {
		p.bar.Finish()
		return
	}
	fmt.Fprintf(p.w, "%s: done\n", p.title)
}

// phases starts a step of long work with its own progress: nodes report
// their builds through it, alone or sharing one bar in the demo.
type phases func(title string, total int) *progress

// progressTo makes every phase a bar of its own on w.
func progressTo(w io.Writer) phases {
	return func(title string, total int) *progress { return newProgress(w, total, title) }
}

// progressGroup is one bar for work done by several tasks at once, such as
// the demo's nodes building their data in parallel.
type progressGroup struct {
	mu    sync.Mutex
	w     io.Writer
	title string
	bar   *progressbar.ProgressBar // guarded by mu; nil when not a terminal
	total int                      // guarded by mu
	open  int                      // phases not finished, guarded by mu
}

func newProgressGroup(w io.Writer, title string) *progressGroup {
	return &progressGroup{w: w, title: title}
}

// phase adds a step's work to the shared bar.
func (g *progressGroup) phase(title string, total int) *progress {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total += total
	g.open++
	if isTerminal(g.w) {
		if g.bar == nil {
			g.bar = newBar(g.w, g.total, g.title)
		} else {
			g.bar.ChangeMax(g.total)
		}
	} else {
		fmt.Fprintf(g.w, "%s: %d to do\n", title, total)
	}
	return &progress{bar: g.bar, w: g.w, title: title, total: total, group: g}
}

func (g *progressGroup) finish(p *progress) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if g.bar == nil {
		fmt.Fprintf(g.w, "%s: done\n", p.title)
	} else if g.open == 0 {
		g.bar.Finish()
	}
}
