package promtext

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Type is a metric family's type as declared by a TYPE line.
type Type uint8

// Family types. OpenMetrics' extra types map onto these (see typeOf).
const (
	Untyped Type = iota
	Counter
	Gauge
	Histogram
	Summary
)

func (t Type) String() string {
	return [...]string{"untyped", "counter", "gauge", "histogram", "summary"}[t]
}

// Kind says which part of a family a sample is.
type Kind uint8

// Sample kinds. Bucket, Sum and Count exist only in histogram and summary
// families, Quantile only in summaries; everything else is Plain.
const (
	Plain Kind = iota
	Bucket
	Sum
	Count
	Quantile
)

// Label is one label pair. Value is unescaped.
type Label struct {
	Name, Value []byte
}

// Sample is one parsed sample. Its slices alias the parser's buffers and stay
// valid only until the next call to Next.
type Sample struct {
	Name         []byte // the sample's metric name, e.g. foo_bucket
	Family       []byte // the family it belongs to, e.g. foo
	Type         Type   // the family's type
	Kind         Kind
	Labels       []Label
	Value        float64
	Timestamp    int64 // milliseconds; meaningful only when HasTimestamp
	HasTimestamp bool
	Line         int // 1-based line number in the body
}

// Entry is what Next found.
type Entry uint8

// Entries returned by Next.
const (
	EntryEOF    Entry = iota // end of body, or a read error (see Err)
	EntrySample              // Sample() holds the sample
	EntryError               // LineError() describes a line that was skipped
)

// LineError describes one malformed line. The parser skips that line only.
type LineError struct {
	Line   int
	Reason string // short, stable, for counters: "syntax", "line_too_long", "invalid_utf8", ...
	Msg    string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Options configure a Parser.
type Options struct {
	// MaxLineBytes caps one line; longer lines are skipped and reported.
	// Zero means DefaultMaxLineBytes.
	MaxLineBytes int
	// OpenMetrics parses application/openmetrics-text instead of the
	// Prometheus text format.
	OpenMetrics bool
}

// DefaultMaxLineBytes is the default line cap: far above any real series
// (Istio's longest are about 1 KiB) yet small enough that a hostile line
// cannot exhaust memory.
const DefaultMaxLineBytes = 1 << 20

const readBufferSize = 64 << 10

// Parser streams samples out of an exposition body.
type Parser struct {
	r       *bufio.Reader
	opts    Options
	lineNo  int
	long    []byte // holds a line that does not fit in r's buffer
	scratch []byte // unescaped label values
	labels  []Label
	sample  Sample
	lerr    LineError
	err     error
	done    bool

	// types holds the TYPE lines of the current chunk. The reference parses
	// each run of comment lines plus the samples after it (a "chunk") with a
	// fresh expfmt parser, so a TYPE line only applies within its chunk.
	types          map[string]Type
	chunkHasSample bool
}

// NewParser returns a parser reading from r.
func NewParser(r io.Reader, opts Options) *Parser {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	p := &Parser{opts: opts, types: make(map[string]Type)}
	p.r = bufio.NewReaderSize(r, readBufferSize)
	return p
}

// Reset makes p read a new body, keeping its buffers.
func (p *Parser) Reset(r io.Reader, opts Options) {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	p.r.Reset(r)
	p.opts = opts
	p.lineNo = 0
	p.err = nil
	p.done = false
	clear(p.types)
	p.chunkHasSample = false
}

// Sample returns the current sample after Next returned EntrySample.
func (p *Parser) Sample() *Sample { return &p.sample }

// LineError returns the current error after Next returned EntryError.
func (p *Parser) LineError() *LineError { return &p.lerr }

// Err returns the read error that ended the body, if any. A body that ends
// in the middle of a line is reported as io.ErrUnexpectedEOF.
func (p *Parser) Err() error { return p.err }

// Line returns the number of lines read so far.
func (p *Parser) Line() int { return p.lineNo }

// Next advances to the next sample or malformed line.
func (p *Parser) Next() Entry {
	for !p.done {
		line, tooLong, ok := p.readLine()
		if tooLong {
			return EntryError
		}
		if !ok {
			continue
		}
		if e, ok := p.parseLine(line); ok {
			return e
		}
	}
	return EntryEOF
}

// readLine returns the next line without its '\n'. tooLong reports a line
// over the cap that was skipped (lerr describes it); ok is false when there
// is no line (end of body or read error).
func (p *Parser) readLine() (line []byte, tooLong, ok bool) {
	b, err := p.r.ReadSlice('\n')
	switch {
	case err == nil:
		p.lineNo++
		return b[:len(b)-1], false, true
	case errors.Is(err, bufio.ErrBufferFull):
		return p.readLongLine(b)
	case err != io.EOF:
		p.done, p.err = true, err
		return nil, false, false
	}
	p.done = true
	if len(b) == 0 {
		return nil, false, false
	}
	// Like textparse, treat a missing final newline as present.
	p.lineNo++
	return b, false, true
}

func (p *Parser) readLongLine(first []byte) (line []byte, tooLong, ok bool) {
	p.long = append(p.long[:0], first...)
	for {
		b, err := p.r.ReadSlice('\n')
		if len(p.long)+len(b) > p.opts.MaxLineBytes+1 {
			return nil, p.skipRestOfLine(err), false
		}
		p.long = append(p.long, b...)
		switch {
		case err == nil:
			p.lineNo++
			return p.long[:len(p.long)-1], false, true
		case errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF:
			p.done = true
			p.lineNo++
			return p.long, false, true
		default:
			p.done, p.err = true, err
			return nil, false, false
		}
	}
}

// skipRestOfLine discards the rest of an over-long line. It reports whether
// the line was complete enough to report as a line error.
func (p *Parser) skipRestOfLine(err error) bool {
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = p.r.ReadSlice('\n')
	}
	switch {
	case err == io.EOF:
		p.done = true
	case err != nil:
		p.done, p.err = true, err
		return false
	}
	p.lineNo++
	p.lerr = LineError{Line: p.lineNo, Reason: "line_too_long",
		Msg: fmt.Sprintf("line longer than %d bytes skipped", p.opts.MaxLineBytes)}
	return true
}
