package mock

import (
	"context"

	"github.com/tempwatch/tempwatch/shared/tempwatch"
)

var _ tempwatch.SensorService = (*SensorService)(nil)

// SensorService is a fake tempwatch.SensorService.
type SensorService struct {
	CreateSensorFn     func(ctx context.Context, s *tempwatch.Sensor, keyHash []byte) (tempwatch.DeviceRef, error)
	FindSensorByIDFn   func(ctx context.Context, id string) (*tempwatch.Sensor, error)
	FindSensorsFn      func(ctx context.Context, f tempwatch.SensorFilter) ([]*tempwatch.Sensor, error)
	UpdateSensorFn     func(ctx context.Context, id string, upd tempwatch.SensorUpdate) (*tempwatch.Sensor, error)
	DeleteSensorFn     func(ctx context.Context, id string) error
	SetDeviceKeyHashFn func(ctx context.Context, id string, keyHash []byte) (*tempwatch.Sensor, tempwatch.DeviceRef, error)
}

// CreateSensor calls CreateSensorFn.
func (s *SensorService) CreateSensor(ctx context.Context, sensor *tempwatch.Sensor, keyHash []byte) (tempwatch.DeviceRef, error) {
	return s.CreateSensorFn(ctx, sensor, keyHash)
}

// FindSensorByID calls FindSensorByIDFn.
func (s *SensorService) FindSensorByID(ctx context.Context, id string) (*tempwatch.Sensor, error) {
	return s.FindSensorByIDFn(ctx, id)
}

// FindSensors calls FindSensorsFn.
func (s *SensorService) FindSensors(ctx context.Context, f tempwatch.SensorFilter) ([]*tempwatch.Sensor, error) {
	return s.FindSensorsFn(ctx, f)
}

// UpdateSensor calls UpdateSensorFn.
func (s *SensorService) UpdateSensor(ctx context.Context, id string, upd tempwatch.SensorUpdate) (*tempwatch.Sensor, error) {
	return s.UpdateSensorFn(ctx, id, upd)
}

// DeleteSensor calls DeleteSensorFn.
func (s *SensorService) DeleteSensor(ctx context.Context, id string) error {
	return s.DeleteSensorFn(ctx, id)
}

// SetDeviceKeyHash calls SetDeviceKeyHashFn.
func (s *SensorService) SetDeviceKeyHash(ctx context.Context, id string, keyHash []byte) (*tempwatch.Sensor, tempwatch.DeviceRef, error) {
	return s.SetDeviceKeyHashFn(ctx, id, keyHash)
}
