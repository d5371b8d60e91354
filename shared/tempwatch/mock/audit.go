package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.AuditLog = (*AuditLog)(nil)

// AuditLog is a fake tempwatch.AuditLog.
type AuditLog struct {
	RecordAuditFn        func(ctx context.Context, ev *tempwatch.AuditEvent) error
	FindAuditEventsFn    func(ctx context.Context, f tempwatch.AuditFilter) ([]*tempwatch.AuditEvent, error)
	FindAuditEventByIDFn func(ctx context.Context, id string) (*tempwatch.AuditEvent, error)
}

// RecordAudit calls RecordAuditFn.
func (a *AuditLog) RecordAudit(ctx context.Context, ev *tempwatch.AuditEvent) error {
	return a.RecordAuditFn(ctx, ev)
}

// FindAuditEvents calls FindAuditEventsFn.
func (a *AuditLog) FindAuditEvents(ctx context.Context, f tempwatch.AuditFilter) ([]*tempwatch.AuditEvent, error) {
	return a.FindAuditEventsFn(ctx, f)
}

// FindAuditEventByID calls FindAuditEventByIDFn.
func (a *AuditLog) FindAuditEventByID(ctx context.Context, id string) (*tempwatch.AuditEvent, error) {
	return a.FindAuditEventByIDFn(ctx, id)
}
