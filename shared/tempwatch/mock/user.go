package mock

import (
	"context"
	"time"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.UserStore = (*UserStore)(nil)

// UserStore is a fake tempwatch.UserStore.
type UserStore struct {
	CreateUserFn      func(ctx context.Context, u *tempwatch.User) error
	FindUserByIDFn    func(ctx context.Context, id string) (*tempwatch.User, error)
	FindUserByLoginFn func(ctx context.Context, client, email string) (*tempwatch.User, error)
	FindUsersFn       func(ctx context.Context, f tempwatch.UserFilter) ([]*tempwatch.User, error)
	UpdateUserFn      func(ctx context.Context, u *tempwatch.User) error
	ChangePasswordFn  func(ctx context.Context, id, oldHash, newHash string) (time.Time, error)
	DeleteUserFn      func(ctx context.Context, id string) error
}

// CreateUser calls CreateUserFn.
func (s *UserStore) CreateUser(ctx context.Context, u *tempwatch.User) error {
	return s.CreateUserFn(ctx, u)
}

// FindUserByID calls FindUserByIDFn.
func (s *UserStore) FindUserByID(ctx context.Context, id string) (*tempwatch.User, error) {
	return s.FindUserByIDFn(ctx, id)
}

// FindUserByLogin calls FindUserByLoginFn.
func (s *UserStore) FindUserByLogin(ctx context.Context, client, email string) (*tempwatch.User, error) {
	return s.FindUserByLoginFn(ctx, client, email)
}

// FindUsers calls FindUsersFn.
func (s *UserStore) FindUsers(ctx context.Context, f tempwatch.UserFilter) ([]*tempwatch.User, error) {
	return s.FindUsersFn(ctx, f)
}

// UpdateUser calls UpdateUserFn.
func (s *UserStore) UpdateUser(ctx context.Context, u *tempwatch.User) error {
	return s.UpdateUserFn(ctx, u)
}

// ChangePassword calls ChangePasswordFn.
func (s *UserStore) ChangePassword(ctx context.Context, id, oldHash, newHash string) (time.Time, error) {
	return s.ChangePasswordFn(ctx, id, oldHash, newHash)
}

// DeleteUser calls DeleteUserFn.
func (s *UserStore) DeleteUser(ctx context.Context, id string) error {
	return s.DeleteUserFn(ctx, id)
}
