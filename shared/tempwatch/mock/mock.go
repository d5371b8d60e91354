// Package mock holds hand-written fakes of the domain's store and service
// interfaces, so handler and authorization tests run with no server (the
// fast tier, make test-unit). Each fake has one function field per method,
// named after it with an Fn suffix, and the method calls it:
//
//	svc := &mock.ClientService{FindClientByIDFn: func(ctx context.Context, id string) (*tempwatch.Client, error) {
//		return nil, tempwatch.NotFound("Client")
//	}}
//
// A test sets the fields of the calls it expects. Calling a method whose
// field is nil panics: the code under test made a call the test did not
// expect. Storage itself is tested against the real servers, never here.
package mock
