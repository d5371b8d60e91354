package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.WebhookService = (*WebhookService)(nil)

// WebhookService is a fake tempwatch.WebhookService.
type WebhookService struct {
	CreateWebhookFn         func(ctx context.Context, w *tempwatch.Webhook) error
	FindWebhookByIDFn       func(ctx context.Context, id string) (*tempwatch.Webhook, error)
	FindWebhooksFn          func(ctx context.Context, f tempwatch.WebhookFilter) ([]*tempwatch.Webhook, error)
	UpdateWebhookFn         func(ctx context.Context, id string, upd tempwatch.WebhookUpdate) (*tempwatch.Webhook, error)
	DeleteWebhookFn         func(ctx context.Context, id string) error
	RotateWebhookSecretFn   func(ctx context.Context, id string, secret string) (*tempwatch.Webhook, error)
	FindWebhookDeliveriesFn func(ctx context.Context, f tempwatch.DeliveryFilter) ([]*tempwatch.WebhookDelivery, error)
}

// CreateWebhook calls CreateWebhookFn.
func (s *WebhookService) CreateWebhook(ctx context.Context, w *tempwatch.Webhook) error {
	return s.CreateWebhookFn(ctx, w)
}

// FindWebhookByID calls FindWebhookByIDFn.
func (s *WebhookService) FindWebhookByID(ctx context.Context, id string) (*tempwatch.Webhook, error) {
	return s.FindWebhookByIDFn(ctx, id)
}

// FindWebhooks calls FindWebhooksFn.
func (s *WebhookService) FindWebhooks(ctx context.Context, f tempwatch.WebhookFilter) ([]*tempwatch.Webhook, error) {
	return s.FindWebhooksFn(ctx, f)
}

// UpdateWebhook calls UpdateWebhookFn.
func (s *WebhookService) UpdateWebhook(ctx context.Context, id string, upd tempwatch.WebhookUpdate) (*tempwatch.Webhook, error) {
	return s.UpdateWebhookFn(ctx, id, upd)
}

// DeleteWebhook calls DeleteWebhookFn.
func (s *WebhookService) DeleteWebhook(ctx context.Context, id string) error {
	return s.DeleteWebhookFn(ctx, id)
}

// RotateWebhookSecret calls RotateWebhookSecretFn.
func (s *WebhookService) RotateWebhookSecret(ctx context.Context, id string, secret string) (*tempwatch.Webhook, error) {
	return s.RotateWebhookSecretFn(ctx, id, secret)
}

// FindWebhookDeliveries calls FindWebhookDeliveriesFn.
func (s *WebhookService) FindWebhookDeliveries(ctx context.Context, f tempwatch.DeliveryFilter) ([]*tempwatch.WebhookDelivery, error) {
	return s.FindWebhookDeliveriesFn(ctx, f)
}

var _ tempwatch.DeliveryQueue = (*DeliveryQueue)(nil)

// DeliveryQueue is a fake tempwatch.DeliveryQueue.
type DeliveryQueue struct {
	TakeDueDeliveriesFn     func(ctx context.Context, t tempwatch.DeliveryTake) ([]*tempwatch.DueDelivery, error)
	RecordDeliveryAttemptFn func(ctx context.Context, o tempwatch.DeliveryOutcome) error
}

// TakeDueDeliveries calls TakeDueDeliveriesFn.
func (s *DeliveryQueue) TakeDueDeliveries(ctx context.Context, t tempwatch.DeliveryTake) ([]*tempwatch.DueDelivery, error) {
	return s.TakeDueDeliveriesFn(ctx, t)
}

// RecordDeliveryAttempt calls RecordDeliveryAttemptFn.
func (s *DeliveryQueue) RecordDeliveryAttempt(ctx context.Context, o tempwatch.DeliveryOutcome) error {
	return s.RecordDeliveryAttemptFn(ctx, o)
}
