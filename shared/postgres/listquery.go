package postgres

import (
	"cmp"
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

// listQuery builds the keyset-paged list query every store uses: filters
// joined with AND, then (created_at, id) < the cursor, newest first, and one
// row more than the page so the caller knows whether a next page exists.
// Deep pages cost what the first does: no OFFSET.
type listQuery struct {
	sql  string
	args []any
	// numericID says ids are bigint (readings), not uuid.
	numericID bool
	// timeColumn is the time the list is ordered by, and the cursor's
	// CreatedAt holds: created_at when empty (alarms: started_at).
	timeColumn string
}

func newListQuery(selectFrom string) *listQuery {
	return &listQuery{sql: selectFrom + " WHERE true"}
}

// arg adds v to the arguments and returns its placeholder.
func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// and adds a condition.
func (q *listQuery) and(cond string) { q.sql += " AND " + cond }

// collect runs the query for page p and scans up to p.Limit+1 rows.
func collect[T any](ctx context.Context, db *pgxpool.Pool, q *listQuery, p tempwatch.PageRequest, scan pgx.RowToFunc[T], what string) ([]T, error) {
	timeColumn := cmp.Or(q.timeColumn, "created_at")
	if c := p.Cursor; c != nil {
		var id any = c.ID
		if q.numericID {
			n, err := strconv.ParseInt(c.ID, 10, 64)
			if err != nil {
				return nil, errForeignCursor()
			}
			id = n
		} else if !tempwatch.IsUUID(c.ID) {
			return nil, errForeignCursor()
		}
		q.and(fmt.Sprintf("(%s, id) < (%s, %s)", timeColumn, q.arg(c.CreatedAt), q.arg(id)))
	}
	q.sql += " ORDER BY " + timeColumn + " DESC, id DESC LIMIT " + q.arg(p.Limit+1)
	rows, _ := db.Query(ctx, q.sql, q.args...)
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", what, err)
	}
	return items, nil
}

func errForeignCursor() error {
	return tempwatch.Invalid("cursor", "does not belong to this list")
}
