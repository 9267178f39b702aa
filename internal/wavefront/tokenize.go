package wavefront

import (
	"bytes"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokWord   tokKind = iota // unquoted text
	tokQuoted                // quoted text, quotes removed and escapes resolved
	tokEq                    // a structural '='
	tokHash                  // a structural '#' (centroid marker)
)

type token struct {
	b    []byte
	kind tokKind
}

// tokenize splits line into d.toks with the reference tokenizer's rules
// (proxy.md §2.1). Unlike the reference, a quoted "=" or "#" stays text:
// quoting is the only way to say "this is data", so it should win.
//
// Quoted tokens with escapes are unescaped into d.scratch, which is sized so
// it never reallocates within one line; tokens therefore stay valid until
// the next call.
func (d *Decoder) tokenize(line []byte) *LineError {
	if bytes.IndexByte(line, 0x04) >= 0 {
		// The reference logs this and then ingests the line anyway (§1.2).
		return parseErr("'EOT' character is not allowed")
	}
	// Framing normally strips the line ending; accept it anyway so encoder
	// output can be fed back directly.
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if cap(d.scratch) < len(line) {
		d.scratch = make([]byte, 0, 2*len(line))
	}
	d.scratch = d.scratch[:0]
	d.toks = d.toks[:0]
	d.pos = 0
	for i := 0; ; {
		i = skipJavaWhitespace(line, i)
		if i >= len(line) {
			return nil
		}
		switch c := line[i]; c {
		case '=':
			d.toks = append(d.toks, token{line[i : i+1 : i+1], tokEq})
			i++
		case '#':
			d.toks = append(d.toks, token{line[i : i+1 : i+1], tokHash})
			i++
		case '"', '\'':
			tok, next, ok := d.unquote(line, i+1, c)
			if !ok {
				return parseErr("Unmatched quote character: (" + string(c) + ")")
			}
			d.toks = append(d.toks, token{tok, tokQuoted})
			i = next
		default:
			j := i + 1
			for j < len(line) && !tokenEnd[line[j]] {
				j++
			}
			d.toks = append(d.toks, token{line[i:j:j], tokWord})
			i = j
		}
	}
}

// unquote reads a quoted token whose body starts at line[i] and returns the
// body, the index after the closing quote, and whether one was found.
//
// Escapes: the reference only knows \q (q = the quote character). To make
// AppendPoint's output decode back exactly (README.md), a run of k
// backslashes directly before q or 'n' stands for k/2 backslashes, and an
// odd k additionally escapes that q (a literal quote) or n (a newline); an
// even k leaves q as the closing quote and n as a plain 'n'. Backslashes
// before anything else are literal. For k=1 before q this is the reference
// rule, and re-encoding any accepted input reproduces its bytes.
func (d *Decoder) unquote(line []byte, i int, q byte) ([]byte, int, bool) {
	e := bytes.IndexByte(line[i:], q)
	if e < 0 {
		return nil, 0, false
	}
	j := bytes.IndexByte(line[i:i+e], '\\')
	if j < 0 {
		return line[i : i+e : i+e], i + e + 1, true
	}
	j += i
	start := len(d.scratch)
	d.scratch = append(d.scratch, line[i:j]...)
	for j < len(line) {
		c := line[j]
		switch {
		case c == q:
			end := len(d.scratch)
			return d.scratch[start:end:end], j + 1, true
		case c == '\\':
			k := j
			for k < len(line) && line[k] == '\\' {
				k++
			}
			run := k - j
			if k < len(line) && (line[k] == q || line[k] == 'n') {
				d.scratch = appendBackslashes(d.scratch, run/2)
				if run%2 == 1 {
					if line[k] == q {
						d.scratch = append(d.scratch, q)
					} else {
						d.scratch = append(d.scratch, '\n')
					}
					k++
				}
			} else {
				d.scratch = appendBackslashes(d.scratch, run)
			}
			j = k
		default:
			d.scratch = append(d.scratch, c)
			j++
		}
	}
	return nil, 0, false
}

// tokenEnd marks the bytes that end an unquoted token.
var tokenEnd = [256]bool{' ': true, '\t': true, '=': true}

func appendBackslashes(dst []byte, n int) []byte {
	for ; n > 0; n-- {
		dst = append(dst, '\\')
	}
	return dst
}

// skipJavaWhitespace skips what Java's Character.isWhitespace accepts, as the
// reference tokenizer does between tokens.
func skipJavaWhitespace(b []byte, i int) int {
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == ' ' || ('\t' <= c && c <= '\r') || (0x1c <= c && c <= 0x1f) {
				i++
				continue
			}
			return i
		}
		r, size := utf8.DecodeRune(b[i:])
		if !isJavaSpaceRune(r) {
			return i
		}
		i += size
	}
	return i
}

// isJavaSpaceRune: Unicode space separators except the no-break ones, plus
// line and paragraph separators.
func isJavaSpaceRune(r rune) bool {
	switch {
	case r == 0x1680, r == 0x205f, r == 0x3000, r == 0x2028, r == 0x2029:
		return true
	case 0x2000 <= r && r <= 0x200a:
		return r != 0x2007
	}
	return false
}
