package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.ClientService = (*ClientService)(nil)

// ClientService is a fake tempwatch.ClientService.
type ClientService struct {
	CreateClientFn   func(ctx context.Context, c *tempwatch.Client) error
	FindClientByIDFn func(ctx context.Context, id string) (*tempwatch.Client, error)
	FindClientsFn    func(ctx context.Context, f tempwatch.ClientFilter) ([]*tempwatch.Client, error)
	UpdateClientFn   func(ctx context.Context, id string, upd tempwatch.ClientUpdate) (*tempwatch.Client, error)
	DeleteClientFn   func(ctx context.Context, id string) ([]string, error)
}

// CreateClient calls CreateClientFn.
func (s *ClientService) CreateClient(ctx context.Context, c *tempwatch.Client) error {
	return s.CreateClientFn(ctx, c)
}

// FindClientByID calls FindClientByIDFn.
func (s *ClientService) FindClientByID(ctx context.Context, id string) (*tempwatch.Client, error) {
	return s.FindClientByIDFn(ctx, id)
}

// FindClients calls FindClientsFn.
func (s *ClientService) FindClients(ctx context.Context, f tempwatch.ClientFilter) ([]*tempwatch.Client, error) {
	return s.FindClientsFn(ctx, f)
}

// UpdateClient calls UpdateClientFn.
func (s *ClientService) UpdateClient(ctx context.Context, id string, upd tempwatch.ClientUpdate) (*tempwatch.Client, error) {
	return s.UpdateClientFn(ctx, id, upd)
}

// DeleteClient calls DeleteClientFn.
func (s *ClientService) DeleteClient(ctx context.Context, id string) ([]string, error) {
	return s.DeleteClientFn(ctx, id)
}
