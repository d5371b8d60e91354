package export

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// bufferSize is the write buffer between the rows and the response.
const bufferSize = 64 << 10

// flushRows is how many rows go by between flushes of the response, so a
// slow export still reaches the caller steadily, not one buffer at a time.
const flushRows = 4096

// csvWriter writes RFC 4180 rows (CRLF ends, text quoted, quotes doubled)
// through a buffer into a committer. Text cells are guarded against CSV
// injection as OWASP advises: one starting with =, +, -, @, a tab or a CR
// gets a leading apostrophe, so a spreadsheet shows it as text instead of
// evaluating a formula.
type csvWriter struct {
	out  *committer
	bw   *bufio.Writer
	row  []byte
	rows int
}

func newCSVWriter(out *committer) *csvWriter {
	return &csvWriter{out: out, bw: bufio.NewWriterSize(out, bufferSize), row: make([]byte, 0, 256)}
}

// text appends a text cell.
func (c *csvWriter) text(s string) {
	c.sep()
	c.row = append(c.row, '"')
	if s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0 {
		c.row = append(c.row, '\'')
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			c.row = append(c.row, '"')
		}
		c.row = append(c.row, s[i])
	}
	c.row = append(c.row, '"')
}

// float appends a number as its shortest exact decimal: nothing to quote.
func (c *csvWriter) float(f float64) {
	c.sep()
	c.row = strconv.AppendFloat(c.row, f, 'f', -1, 64)
}

// optFloat appends *f, or an empty cell for nil (not known, no limit).
func (c *csvWriter) optFloat(f *float64) {
	if f == nil {
		c.sep()
		return
	}
	c.float(*f)
}

// int appends an integer.
func (c *csvWriter) int(n int64) {
	c.sep()
	c.row = strconv.AppendInt(c.row, n, 10)
}

// time appends t in loc as RFC 3339 with its offset (fractions of a second
// only when there are any): nothing to quote.
func (c *csvWriter) time(t time.Time, loc *time.Location) {
	c.sep()
	c.row = t.In(loc).AppendFormat(c.row, time.RFC3339Nano)
}

// raw appends a cell known to need no quoting (a date, a UUID).
func (c *csvWriter) raw(s string) {
	c.sep()
	c.row = append(c.row, s...)
}

func (c *csvWriter) sep() {
	if len(c.row) > 0 {
		c.row = append(c.row, ',')
	}
}

// header writes the header row.
func (c *csvWriter) header(names []string) error {
	for _, n := range names {
		c.raw(n)
	}
	return c.end()
}

// end finishes the row. The first row and then every flushRows-th are
// flushed to the caller.
func (c *csvWriter) end() error {
	c.row = append(c.row, '\r', '\n')
	_, err := c.bw.Write(c.row)
	c.row = c.row[:0]
	c.rows++
	if err == nil && (c.rows == 2 || c.rows%flushRows == 0) {
		err = c.flush()
	}
	return err
}

// flush sends what is buffered on to the caller.
func (c *csvWriter) flush() error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.out.flush()
}

// committer is the response as the CSV writer sees it: the CSV headers
// and the 200 are written with the first bytes, so an export that fails
// before any row has gone out still answers a problem instead of a CSV.
type committer struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	headers   func(http.Header)
	committed bool
}

var _ io.Writer = (*committer)(nil)

func (c *committer) Write(p []byte) (int, error) {
	if !c.committed {
		c.committed = true
		c.headers(c.w.Header())
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(p)
}

func (c *committer) flush() error {
	if !c.committed {
		return nil
	}
	if err := c.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
