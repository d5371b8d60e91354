package lambdahttp

import "io"

// SetEMFOutput sends the invocations' metrics to w until restore is called.
func SetEMFOutput(w io.Writer) (restore func()) {
	old := emfOut
	emfOut = w
	return func() { emfOut = old }
}
