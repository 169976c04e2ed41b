#pragma once
/// \file The exception hierarchy shared by every module, named after Python's.
///
/// Every error concur throws derives from `concur::Error` (a `std::runtime_error`), except misuse
/// that Python reports as ValueError/RuntimeError: that throws `std::invalid_argument` /
/// `std::logic_error` with a message that says what to do instead.
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace concur {

/// Base of every concur error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The operation was cancelled (Python's `CancelledError`).
class CancelledError : public Error {
 public:
  CancelledError() : Error("operation was cancelled") {}
  using Error::Error;
};

/// A timed wait ran out of time (Python's `TimeoutError`).
class TimeoutError : public Error {
 public:
  TimeoutError() : Error("timed out") {}
  using Error::Error;
};

/// The object is not in a state that allows the call (Python's `InvalidStateError`).
class InvalidStateError : public Error {
 public:
  using Error::Error;
};

/// An operating-system error (Python's `OSError`): errno() is the error number; the message
/// says what was attempted and on what ("connect to 127.0.0.1:8080: Connection refused").
class OSError : public Error {
 public:
  OSError(int err, const std::string& what) : Error(what), errno_(err) {}
  [[nodiscard]] int errno_code() const noexcept { return errno_; }

 private:
  int errno_;
};
/// Python's ConnectionError and its subclasses, picked by errno in make_os_error().
class ConnectionError : public OSError {
 public:
  using OSError::OSError;
};
class ConnectionRefusedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class ConnectionResetError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class ConnectionAbortedError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
class BrokenPipeError : public ConnectionError {
 public:
  using ConnectionError::ConnectionError;
};
/// Python's FileExistsError (EEXIST): e.g. creating a shared-memory segment whose name is taken.
class FileExistsError : public OSError {
 public:
  using OSError::OSError;
};
/// Python's FileNotFoundError (ENOENT): e.g. attaching to a shared-memory segment that is gone.
class FileNotFoundError : public OSError {
 public:
  using OSError::OSError;
};
/// Python's PermissionError (EACCES, EPERM).
class PermissionError : public OSError {
 public:
  using OSError::OSError;
};
/// "what: strerror(err)" as the OSError subclass Python would raise for `err`.
std::exception_ptr make_os_error(int err, const std::string& what);
/// Throws make_os_error(err, what).
[[noreturn]] void throw_os_error(int err, const std::string& what);

/// Several errors at once (Python's `ExceptionGroup`): holds every child error.
class ExceptionGroup : public Error {
 public:
  ExceptionGroup(const std::string& message, std::vector<std::exception_ptr> errors);
  /// The child errors, in the order they were collected.
  [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept { return errors_; }

 private:
  std::vector<std::exception_ptr> errors_;
};

/// A readable one-line description of an exception_ptr ("TypeName: what()").
std::string describe(const std::exception_ptr& e);

/// Reports an error that nobody can receive (a throwing callback, a failing thread target) on
/// stderr, prefixed by `context`. Never throws. Replace the sink with `set_unraisable_hook`.
void report_unraisable(const std::string& context, const std::exception_ptr& e) noexcept;

/// Hook for errors nobody can receive (Python's `sys.unraisablehook`). Pass nullptr to restore
/// the default (print to stderr). Thread-safe.
using UnraisableHook = void (*)(const std::string& context, const std::exception_ptr& e);
void set_unraisable_hook(UnraisableHook hook) noexcept;

}  // namespace concur
