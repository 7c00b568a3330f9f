package register

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bildrum/bildrum"
)

// errRejected ends the sequence given to the store when the input had
// errors, so that the store rolls back; the caller sees the Report.
var errRejected = errors.New("register: input rejected")

// maxRecordBytes bounds one row of the CSV: a row is a few hundred bytes, so
// anything longer is a quote left open, and reading on would hold the rest
// of the file in memory.
const maxRecordBytes = 1 << 20

// progressEvery is how many bytes pass between two calls of Options.Progress.
const progressEvery = 256 << 10

// ImportCSV reads a register CSV (docs/register.md) from r and stores its
// rows in store, in one pass and one transaction of store.PutEpisodeStream.
//
// Every row is checked: the header, the encoding (UTF-8; a UTF-8 byte order
// mark is skipped), the CSV syntax, each value, and the rules between the
// values of a row; a row's region must be opts.Region. Valid rows go to the
// store as they are read; at the first invalid row the import stops writing
// but reads on to report every error, and at the end makes the store roll
// back. So either every row is stored, or none.
//
// The Report says how many rows were read, changed and unchanged, and lists
// the errors with file, line and column. For invalid input the error is a
// *bildrum.Error with code EINVALID and a one-line summary; any other error
// (the reader's, the store's, ctx's) is returned wrapped, and also means
// nothing was stored. Memory stays flat in the size of the file, apart from
// the set of episode ids seen, which finds an id given twice.
func ImportCSV(ctx context.Context, r io.Reader, opts Options, store Store) (Report, error) {
	opts, err := opts.withDefaults("register.csv")
	if err != nil {
		return Report{}, err
	}
	imp := newCSVImport(r, opts)
	res, err := store.PutEpisodeStream(ctx, imp.episodes(ctx))
	imp.in.reportProgress()
	return imp.finish(res, err)
}

// csvImport is the state of one ImportCSV.
type csvImport struct {
	opts   Options
	check  checker
	in     *countingReader
	csv    *csv.Reader
	report Report
	coll   collector
	seen   map[string]int // episode id → line, to find repeats
	probs  problems

	bom      int64 // length of the byte order mark skipped
	lastLine int   // line of the last row read whole
	readErr  error // the reader failed: not the input's fault
	ctxErr   error // ctx ended while reading
}

func newCSVImport(r io.Reader, opts Options) *csvImport {
	imp := &csvImport{
		opts:  opts,
		check: newChecker(opts.Region, opts.Now()),
		in:    &countingReader{r: r, progress: opts.Progress, maxRecord: maxRecordBytes},
		seen:  make(map[string]int),
	}
	imp.report.File = opts.FileName
	imp.coll = collector{report: &imp.report, max: opts.MaxErrors}
	return imp
}

// finish turns the store's result into the Report and the error.
func (imp *csvImport) finish(res bildrum.PutResult, err error) (Report, error) {
	switch {
	case imp.ctxErr != nil:
		return imp.report, fmt.Errorf("import %s: %w", imp.opts.FileName, imp.ctxErr)
	case imp.readErr != nil:
		return imp.report, fmt.Errorf("import %s: read: %w", imp.opts.FileName, imp.readErr)
	case err != nil && !errors.Is(err, errRejected):
		return imp.report, fmt.Errorf("import %s: %w", imp.opts.FileName, err)
	case imp.coll.failed():
		return imp.report, imp.coll.rejection()
	}
	imp.report.Changed, imp.report.Unchanged = res.Changed, res.Unchanged
	return imp.report, nil
}

// batchSize is how many valid rows the reader hands to the store at once.
const batchSize = 512

// episodes yields the valid rows while there has been no error, and after
// the last row errRejected if there was one. The input is read and checked
// on a goroutine of its own, a few batches ahead of the store, so that
// checking and storing use two cores; imp's report and errors belong to
// that goroutine until it has ended.
func (imp *csvImport) episodes(ctx context.Context) iter.Seq2[bildrum.ScreeningEpisode, error] {
	return func(yield func(bildrum.ScreeningEpisode, error) bool) {
		batches := make(chan []bildrum.ScreeningEpisode, 4)
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			defer close(batches)
			imp.produce(ctx, batches, stop)
		}()
		defer func() {
			close(stop)
			<-done
		}()
		for batch := range batches {
			for _, e := range batch {
				if !yield(e, nil) {
					return // the store failed; it returns why
				}
			}
		}
		<-done
		switch {
		case imp.ctxErr != nil:
			yield(bildrum.ScreeningEpisode{}, imp.ctxErr)
		case imp.readErr != nil:
			yield(bildrum.ScreeningEpisode{}, imp.readErr)
		case imp.coll.failed():
			yield(bildrum.ScreeningEpisode{}, errRejected)
		}
	}
}

// produce reads and checks every row and sends the valid ones in batches
// to out until the first error; then it reads on only to report.
func (imp *csvImport) produce(ctx context.Context, out chan<- []bildrum.ScreeningEpisode, stop <-chan struct{}) {
	if !imp.start() {
		return
	}
	batch := make([]bildrum.ScreeningEpisode, 0, batchSize)
	send := func() bool {
		select {
		case out <- batch:
			batch = make([]bildrum.ScreeningEpisode, 0, batchSize)
			return true
		case <-stop:
			return false
		}
	}
	var e bildrum.ScreeningEpisode
	for n := 1; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			imp.ctxErr = ctx.Err()
			return
		}
		ok, done := imp.next(&e)
		if done {
			break
		}
		if ok && !imp.coll.failed() {
			batch = append(batch, e)
			if len(batch) == batchSize && !send() {
				return
			}
		}
	}
	if len(batch) > 0 && !imp.coll.failed() {
		send()
	}
}

// start checks the byte order mark and the header. It reports whether rows
// may follow.
func (imp *csvImport) start() bool {
	buf := bufio.NewReaderSize(imp.in, 64<<10)
	bom, ok := skipBOM(buf)
	if !ok {
		imp.fatal(1, "the file is saved as UTF-16 (Unicode), but the register reads UTF-8: save it as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")")
		return false
	}
	imp.bom = bom
	imp.csv = csv.NewReader(buf)
	imp.csv.FieldsPerRecord = -1 // row lengths are checked here, with better words
	imp.csv.ReuseRecord = true
	header, err := imp.csv.Read()
	imp.in.recordStart = imp.offset()
	switch {
	case err == io.EOF:
		imp.fatal(1, "the file is empty: its first line must be the header "+strings.Join(columnNames[:], ","))
		return false
	case err != nil:
		imp.readError(err, 1, header)
		return false
	}
	for _, p := range checkHeader(header) {
		fe := FieldError{File: imp.opts.FileName, Line: 1, Message: p.msg}
		if p.pos >= 0 {
			fe.Column, fe.Field = p.pos+1, p.name
		}
		imp.coll.add(fe)
	}
	if imp.coll.failed() {
		imp.coll.fatal = "the header is not the register's"
		return false
	}
	return true
}

// skipBOM consumes a UTF-8 byte order mark, returning its length. It
// reports false for input in UTF-16 or UTF-32: a byte order mark of those,
// or a zero byte among the first two.
func skipBOM(buf *bufio.Reader) (int64, bool) {
	b, _ := buf.Peek(3)
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		n, _ := buf.Discard(3)
		return int64(n), true
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		return 0, false
	case len(b) >= 2 && (b[0] == 0 || b[1] == 0):
		return 0, false
	}
	return 0, true
}

// offset is how many bytes of the input the CSV reader has used.
func (imp *csvImport) offset() int64 { return imp.bom + imp.csv.InputOffset() }

// atEnd reports whether the CSV reader has used the whole input.
func (imp *csvImport) atEnd() bool { return imp.in.eof && imp.offset() == imp.in.n }

// next reads one row into e. done is true at the end of the input, or when
// it cannot be read on; ok is true for a valid row.
func (imp *csvImport) next(e *bildrum.ScreeningEpisode) (ok, done bool) {
	rec, err := imp.csv.Read()
	imp.in.recordStart = imp.offset()
	if err == io.EOF {
		return false, true
	}
	imp.report.Rows++
	if err != nil {
		line := imp.lastLine + 1
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line = pe.StartLine
		}
		imp.report.Invalid++
		return false, !imp.readError(err, line, rec)
	}
	line, _ := imp.csv.FieldPos(0)
	imp.lastLine = line
	imp.probs.reset()
	if len(rec) != numColumns {
		imp.probs.add(-1, "%s", imp.fieldCountMessage(len(rec)))
	} else {
		checkRaw(rec, &imp.probs)
		imp.check.parseRow(rec, e, &imp.probs)
		imp.checkRepeat(e, line)
	}
	if len(imp.probs.list) == 0 {
		return true, false
	}
	imp.report.Invalid++
	slices.SortStableFunc(imp.probs.list, func(a, b problem) int { return a.col - b.col })
	for _, p := range imp.probs.list {
		l := line
		if p.col >= 0 {
			l, _ = imp.csv.FieldPos(p.col)
		}
		imp.addProblem(l, p)
	}
	return false, false
}

// checkRepeat finds an episode id given on an earlier line.
func (imp *csvImport) checkRepeat(e *bildrum.ScreeningEpisode, line int) {
	if e.ID == "" {
		return
	}
	if first, ok := imp.seen[e.ID]; ok {
		imp.probs.add(colID, "the episode id %s is also on line %d: give each invitation one row", e.ID, first)
		return
	}
	imp.seen[strings.Clone(e.ID)] = line
}

// fieldCountMessage explains a row with the wrong number of values.
func (imp *csvImport) fieldCountMessage(n int) string {
	if imp.atEnd() && imp.in.last != '\n' && n < numColumns {
		return fmt.Sprintf("the file ends in the middle of this row, which has %d of the %d columns and no line break: the file was probably cut off while copied or saved; export it again", n, numColumns)
	}
	return fmt.Sprintf("the row has %d values but the header has %d columns: look for a missing or an extra comma (a value that contains a comma must be in quotes)", n, numColumns)
}

// readError records an error of the CSV reader at line and reports whether
// reading may go on.
func (imp *csvImport) readError(err error, line int, partial []string) bool {
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		col := len(partial) // the field being read when it failed
		msg := quoteMessage(pe, imp.atEnd())
		fe := FieldError{File: imp.opts.FileName, Line: pe.StartLine, Message: msg}
		if col < numColumns {
			fe.Column, fe.Field = col+1, columnNames[col]
		}
		imp.coll.add(fe)
		return true
	case errors.Is(err, errRecordTooLong):
		imp.fatal(line, fmt.Sprintf("the row starting here is longer than %d bytes: a quote is probably opened and never closed; check the quotes from this line on", maxRecordBytes))
		return false
	default:
		imp.readErr = err
		return false
	}
}

// quoteMessage says in words what a CSV syntax error means; atEnd tells
// that the reader had reached the end of the input.
func quoteMessage(pe *csv.ParseError, atEnd bool) string {
	switch {
	case errors.Is(pe.Err, csv.ErrQuote) && atEnd:
		return fmt.Sprintf("the quoted value that starts on line %d is never closed: a closing quote is missing, or the file was cut off", pe.StartLine)
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return fmt.Sprintf("a quote \" stands inside a value that does not start with one (at character %d of the line): put the whole value in quotes and write the quote twice (\"\"), or remove it", pe.Column)
	case pe.Line != pe.StartLine:
		return fmt.Sprintf("the quoted value that starts on line %d is not closed before line %d: a closing quote is missing or stray", pe.StartLine, pe.Line)
	default:
		return fmt.Sprintf("a quoted value is followed by more text before the next comma (at character %d of the line): quotes inside a quoted value must be written twice (\"\")", pe.Column)
	}
}

// fatal records an error that stops the import at once.
func (imp *csvImport) fatal(line int, msg string) {
	imp.coll.add(FieldError{File: imp.opts.FileName, Line: line, Message: msg})
	if imp.coll.fatal == "" {
		imp.coll.fatal = msg
	}
}

// addProblem records a problem of the row on line.
func (imp *csvImport) addProblem(line int, p problem) {
	fe := FieldError{File: imp.opts.FileName, Line: line, Message: p.msg}
	if p.col >= 0 {
		fe.Column, fe.Field = p.col+1, columnNames[p.col]
	}
	imp.coll.add(fe)
}

// checkRaw rejects values that are not UTF-8 or have spaces around them,
// before they are parsed.
func checkRaw(rec []string, p *problems) {
	for i, v := range rec {
		if !utf8.ValidString(v) {
			p.add(i, "%s", notUTF8(v))
		} else if v != strings.TrimSpace(v) {
			p.add(i, "%q has spaces before or after the value: remove them", v)
		}
	}
}

// notUTF8 explains the first byte of v that is not UTF-8, guessing the
// character it stands for in Latin-1, as Excel and older systems save.
func notUTF8(v string) string {
	i := 0
	for i < len(v) {
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	b := v[i]
	guess := ""
	if b >= 0xA0 {
		guess = fmt.Sprintf(" (%q in Latin-1)", rune(b))
	}
	return fmt.Sprintf("the byte 0x%02X%s at character %d of the value is not UTF-8: the file seems saved as Latin-1 (ISO-8859-1) or Windows-1252; save it as UTF-8 (in Excel: \"CSV UTF-8 (comma delimited)\")", b, guess, utf8.RuneCountInString(v[:i])+1)
}

// headerProblem is one thing wrong with the header: pos is the column's
// place in the file (from 0) or, for a missing column, where it belongs;
// -1 for the line as a whole.
type headerProblem struct {
	pos  int
	name string
	msg  string
}

// checkHeader compares the header with the published columns and says
// which are missing, unknown or out of order.
func checkHeader(h []string) []headerProblem {
	whole := func(msg string) []headerProblem { return []headerProblem{{-1, "", msg}} }
	if len(h) == 1 && strings.Count(h[0], ";") >= numColumns/2 {
		return whole("the columns are separated by semicolons, as Excel saves CSV with Swedish settings, but the register reads commas: save as \"CSV UTF-8 (comma delimited)\" or change the list separator to a comma")
	}
	for _, name := range h {
		if !utf8.ValidString(name) {
			return whole("the header " + notUTF8(name))
		}
		if strings.ContainsRune(name, '\r') {
			return whole("the lines end with a carriage return (CR) only, as on old Macs: save the file with Windows (CRLF) or Unix (LF) line endings")
		}
	}
	var out []headerProblem
	misspelt := map[int]bool{}
	for i, name := range h {
		if columnIndex(name) >= 0 {
			continue // known; if out of place, reported below
		}
		msg := fmt.Sprintf("column %d is %q, which is not a register column", i+1, name)
		if want := columnIndexFold(name); want >= 0 && !containsString(h, columnNames[want]) {
			msg = fmt.Sprintf("column %d is %q: write it %q", i+1, name, columnNames[want])
			misspelt[want] = true
		}
		out = append(out, headerProblem{i, name, msg})
	}
	for i, name := range columnNames {
		if !containsString(h, name) && !misspelt[i] {
			out = append(out, headerProblem{i, name, fmt.Sprintf("the column %q is missing: it belongs at position %d", name, i+1)})
		}
	}
	if len(out) > 0 {
		return out
	}
	for i, name := range h {
		if i >= numColumns || name != columnNames[i] {
			return []headerProblem{{i, name, fmt.Sprintf("column %d is %q but should be %q: the columns must come in the published order %s", i+1, name, columnNames[min(i, numColumns-1)], strings.Join(columnNames[:], ","))}}
		}
	}
	return nil
}

func columnIndex(name string) int {
	for i, c := range columnNames {
		if c == name {
			return i
		}
	}
	return -1
}

func columnIndexFold(name string) int {
	name = strings.TrimSpace(name)
	for i, c := range columnNames {
		if strings.EqualFold(c, name) {
			return i
		}
	}
	return -1
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// errRecordTooLong stops reading a row that has grown beyond maxRecordBytes.
var errRecordTooLong = errors.New("register: row too long")

// countingReader counts and watches the bytes of the input: how many, the
// last one, whether the end was reached, and, when maxRecord is set, how
// far the row being read has grown since recordStart (the CSV reader's
// offset after the last row).
type countingReader struct {
	r           io.Reader
	n           int64
	last        byte
	eof         bool
	maxRecord   int64
	recordStart int64
	progress    func(int64)
	reported    int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.maxRecord > 0 && c.n-c.recordStart > c.maxRecord {
		return 0, errRecordTooLong
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.last = p[n-1]
		if c.progress != nil && c.n-c.reported >= progressEvery {
			c.reportProgress()
		}
	}
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// reportProgress calls the progress function with the bytes read so far.
func (c *countingReader) reportProgress() {
	if c.progress != nil {
		c.reported = c.n
		c.progress(c.n)
	}
}
