package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipeline sends pgx batches over one connection in pipeline mode, so that
// the results of what was sent first can be read, and more sent, while the
// server still works on the rest (writeEvaluated). Statements must be
// prepared on the connection before (prepare); their results are read, in
// order, by the callbacks queued with them, as pgx.SendBatch would.
type pipeline struct {
	conn   *pgx.Conn
	p      *pgconn.Pipeline
	queued []*pgx.QueuedQuery // sent, their results not read yet
	synced bool
}

// errNotPrepared is send's answer for a statement the connection has not
// prepared: the caller goes on without the pipeline.
var errNotPrepared = errors.New("statement not prepared on this connection")

// prepare prepares sqls on conn (pgx keeps them for the connection's
// life, so this is a lookup after the first time).
func prepare(ctx context.Context, conn *pgx.Conn, sqls ...string) error {
	for _, sql := range sqls {
		if _, err := conn.Prepare(ctx, sql, sql); err != nil {
			return err
		}
	}
	return nil
}

// statements are the statements queued on b.
func statements(b *pgx.Batch) []string {
	sqls := make([]string, len(b.QueuedQueries))
	for i, qq := range b.QueuedQueries {
		sqls[i] = qq.SQL
	}
	return sqls
}

func startPipeline(ctx context.Context, conn *pgx.Conn) *pipeline {
	return &pipeline{conn: conn, p: conn.PgConn().StartPipeline(ctx)}
}

// send encodes b's statements and queues them to be sent (flush). It
// queues nothing of b unless it can queue all of it.
func (pl *pipeline) send(ctx context.Context, b *pgx.Batch) error {
	type bound struct {
		sd  *pgconn.StatementDescription
		eqb pgx.ExtendedQueryBuilder
	}
	all := make([]bound, len(b.QueuedQueries))
	for i, qq := range b.QueuedQueries {
		// Prepared, it is a lookup; unprepared, the busy connection
		// refuses it before any I/O.
		sd, err := pl.conn.Prepare(ctx, qq.SQL, qq.SQL)
		if err != nil {
			return errNotPrepared
		}
		all[i].sd = sd
		if err := all[i].eqb.Build(pl.conn.TypeMap(), sd, qq.Arguments); err != nil {
			return err
		}
	}
	for i := range all {
		pl.p.SendQueryStatement(all[i].sd, all[i].eqb.ParamValues, all[i].eqb.ParamFormats, all[i].eqb.ResultFormats)
	}
	pl.queued = append(pl.queued, b.QueuedQueries...)
	return nil
}

// askResults queues a request that the server send the results of what
// was queued before it at once, without waiting for the rest.
func (pl *pipeline) askResults() { pl.p.SendFlushRequest() }

// flush sends what is queued.
func (pl *pipeline) flush() error { return pl.p.Flush() }

// read reads the results of the next n statements sent, each through its
// callback.
func (pl *pipeline) read(n int) error {
	for range n {
		qq := pl.queued[0]
		pl.queued = pl.queued[1:]
		res, err := pl.p.GetResults()
		if err != nil {
			return err
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			return fmt.Errorf("pipeline: unexpected result %T", res)
		}
		br := &pipelineResult{conn: pl.conn, rr: rr}
		if qq.Fn != nil {
			err = qq.Fn(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			return err
		}
		if _, err := rr.Close(); err != nil {
			return err
		}
	}
	return nil
}

// sync sends what is queued and ends the pipeline's requests: the server
// then runs them all, a failed one skipping the rest.
func (pl *pipeline) sync() error {
	pl.synced = true
	return pl.p.Sync()
}

// close ends the pipeline, syncing it if need be; results not read are
// dropped. Its error is the first the server sent, if any.
func (pl *pipeline) close() error {
	if !pl.synced {
		_ = pl.sync()
	}
	return pl.p.Close()
}

// pipelineResult is one statement's result as a pgx.BatchResults, for the
// callbacks of pgx.QueuedQuery.
type pipelineResult struct {
	conn *pgx.Conn
	rr   *pgconn.ResultReader
}

func (r *pipelineResult) Exec() (pgconn.CommandTag, error) { return r.rr.Close() }

func (r *pipelineResult) Query() (pgx.Rows, error) {
	return pgx.RowsFromResultReader(r.conn.TypeMap(), r.rr), nil
}

func (r *pipelineResult) QueryRow() pgx.Row {
	rows, _ := r.Query()
	return pipelineRow{rows}
}

type pipelineRow struct{ rows pgx.Rows }

func (r pipelineRow) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

func (r *pipelineResult) Close() error { _, err := r.rr.Close(); return err }

func (r *pipelineResult) Tx() pgx.Tx { return nil } // pipelines begin no pgx.Tx
