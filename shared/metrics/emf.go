package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Namespace is the CloudWatch namespace of every metric.
const Namespace = "tempwatch"

// The Embedded Metric Format's limits: values per metric member, metrics
// per directive.
const (
	maxValues  = 100
	maxMetrics = 100
)

// WriteEMF writes series as Embedded Metric Format documents, one JSON line
// each, stamped now. Series whose label values agree share a document, so
// an HTTP invocation (one request) is one line; a batch naming several
// clients or outcomes needs one document per distinct value of a label,
// since a document holds one value per dimension. A histogram with more
// than the 100 values a member may hold continues in further documents:
// every observation is kept, none averaged away. Nothing is written for no
// series.
func WriteEMF(w io.Writer, series []Series, now time.Time) error {
	var docs []*emfDoc
	for _, s := range series {
		labels := make([]string, len(s.Labels))
		for i, l := range s.Labels {
			if l == "" {
				l = "unknown" // a dimension value may not be empty
			}
			labels[i] = l
		}
		var chunks [][]float64
		if s.Def.Kind == Counter {
			chunks = [][]float64{{s.Sum}}
		} else {
			chunks = slices.Collect(slices.Chunk(s.Values, maxValues))
		}
		for _, values := range chunks {
			d := fit(docs, s.Def, labels)
			if d == nil {
				d = newDoc()
				docs = append(docs, d)
			}
			d.add(s.Def, labels, values)
		}
	}
	var buf bytes.Buffer
	for _, d := range docs {
		buf.Reset()
		if err := d.encode(&buf, now); err != nil {
			return err
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

type emfDoc struct {
	dims       map[string]string    // dimension values
	values     map[string][]float64 // metric values
	counters   map[string]bool      // metrics written as one number
	directives []emfDirective
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit,omitempty"`
}

func newDoc() *emfDoc {
	return &emfDoc{dims: map[string]string{}, values: map[string][]float64{}, counters: map[string]bool{}}
}

// fit returns the first document that can take d with labels: d not in it
// yet, and every label either absent or of the same value.
func fit(docs []*emfDoc, d *Def, labels []string) *emfDoc {
	for _, doc := range docs {
		if len(doc.values) < maxMetrics && doc.accepts(d, labels) {
			return doc
		}
	}
	return nil
}

func (doc *emfDoc) accepts(d *Def, labels []string) bool {
	if _, taken := doc.values[d.Name]; taken {
		return false
	}
	if _, taken := doc.dims[d.Name]; taken {
		return false
	}
	for i, name := range d.Labels {
		if _, taken := doc.values[name]; taken {
			return false
		}
		if v, ok := doc.dims[name]; ok && v != labels[i] {
			return false
		}
	}
	return true
}

func (doc *emfDoc) add(d *Def, labels []string, values []float64) {
	for i, name := range d.Labels {
		doc.dims[name] = labels[i]
	}
	doc.values[d.Name] = values
	doc.counters[d.Name] = d.Kind == Counter
	m := emfMetric{Name: d.Name, Unit: d.Unit}
	for i := range doc.directives {
		if slices.Equal(doc.directives[i].Dimensions[0], d.Labels) {
			doc.directives[i].Metrics = append(doc.directives[i].Metrics, m)
			return
		}
	}
	doc.directives = append(doc.directives, emfDirective{Namespace: Namespace,
		Dimensions: [][]string{d.Labels}, Metrics: []emfMetric{m}})
}

// encode appends the document as one JSON line, its root members in name
// order. It is written by hand: encoding/json over maps cost several times
// the request it describes.
func (doc *emfDoc) encode(buf *bytes.Buffer, now time.Time) error {
	b := buf.AvailableBuffer()
	b = append(b, `{"_aws":{"CloudWatchMetrics":[`...)
	for i, dir := range doc.directives {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Namespace":`...)
		b = appendString(b, dir.Namespace)
		b = append(b, `,"Dimensions":[`...)
		for j, set := range dir.Dimensions {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k, name := range set {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendString(b, name)
			}
			b = append(b, ']')
		}
		b = append(b, `],"Metrics":[`...)
		for j, m := range dir.Metrics {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Name":`...)
			b = appendString(b, m.Name)
			if m.Unit != "" {
				b = append(b, `,"Unit":`...)
				b = appendString(b, m.Unit)
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"Timestamp":`...)
	b = strconv.AppendInt(b, now.UnixMilli(), 10)
	b = append(b, '}')
	keys := make([]string, 0, len(doc.dims)+len(doc.values))
	for k := range doc.dims {
		keys = append(keys, k)
	}
	for k := range doc.values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(b, ',')
		b = appendString(b, k)
		b = append(b, ':')
		if v, ok := doc.dims[k]; ok {
			b = appendString(b, v)
			continue
		}
		vs := doc.values[k]
		if doc.counters[k] {
			b = appendNumber(b, vs[0])
			continue
		}
		b = append(b, '[')
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNumber(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	_, err := buf.Write(b)
	return err
}

// appendNumber appends v as a JSON number; a value JSON cannot hold (NaN,
// an infinity) is written as 0 rather than breaking the document.
func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[r>>4], "0123456789abcdef"[r&15])
		default:
			b = utf8.AppendRune(b, r) // RuneError for invalid bytes: U+FFFD
		}
	}
	return append(b, '"')
}

// IsEMF reports whether line looks like an Embedded Metric Format document,
// cheaply, before ParseEMF decodes it.
func IsEMF(line []byte) bool {
	line = bytes.TrimSpace(line)
	return len(line) > 0 && line[0] == '{' && bytes.Contains(line, []byte(`"CloudWatchMetrics"`))
}

// ParseEMF reads the series of an Embedded Metric Format document that
// are instruments of this package (Defs) in this namespace; other metrics,
// and directives whose dimensions are not the instrument's labels, are
// skipped. A document that is not EMF is an error.
func ParseEMF(line []byte) ([]Series, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return nil, fmt.Errorf("metrics: EMF document: %w", err)
	}
	var meta struct {
		CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
	}
	if err := json.Unmarshal(root["_aws"], &meta); err != nil || meta.CloudWatchMetrics == nil {
		return nil, fmt.Errorf("metrics: not an EMF document: no _aws.CloudWatchMetrics")
	}
	var out []Series
	for _, dir := range meta.CloudWatchMetrics {
		if dir.Namespace != Namespace {
			continue
		}
		for _, m := range dir.Metrics {
			d := defByName(m.Name)
			if d == nil || !slices.ContainsFunc(dir.Dimensions, func(ds []string) bool { return slices.Equal(ds, d.Labels) }) {
				continue
			}
			s := Series{Def: d, Labels: make([]string, len(d.Labels))}
			for i, name := range d.Labels {
				if err := json.Unmarshal(root[name], &s.Labels[i]); err != nil {
					return nil, fmt.Errorf("metrics: EMF dimension %s of %s: %w", name, d.Name, err)
				}
			}
			values, err := emfValues(root[d.Name])
			if err != nil {
				return nil, fmt.Errorf("metrics: EMF value of %s: %w", d.Name, err)
			}
			if d.Kind == Counter {
				for _, v := range values {
					s.Sum += v
				}
			} else {
				s.Values = values
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// emfValues reads a metric member: a number or an array of numbers.
func emfValues(raw json.RawMessage) ([]float64, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("missing")
	}
	if strings.HasPrefix(string(bytes.TrimSpace(raw)), "[") {
		var vs []float64
		err := json.Unmarshal(raw, &vs)
		return vs, err
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("not finite")
	}
	return []float64{v}, nil
}
