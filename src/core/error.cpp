#include "concur/core/error.hpp"

#include <cxxabi.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <typeinfo>

namespace concur {

namespace {
std::string build_group_message(const std::string& message, const std::vector<std::exception_ptr>& errors) {
  std::string m =
      message + " (" + std::to_string(errors.size()) + " sub-exception" + (errors.size() == 1 ? "" : "s") + ")";
  for (const auto& e : errors) m += "\n  - " + describe(e);
  return m;
}

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d) ? d : name;
  std::free(d);  // NOLINT(cppcoreguidelines-no-malloc): __cxa_demangle allocates with malloc
  return out;
}

std::atomic<UnraisableHook> g_hook{nullptr};
}  // namespace

ExceptionGroup::ExceptionGroup(const std::string& message, std::vector<std::exception_ptr> errors)
    : Error(build_group_message(message, errors)), errors_(std::move(errors)) {}

std::string describe(const std::exception_ptr& e) {
  if (!e) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return demangle(typeid(ex).name()) + ": " + ex.what();
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return t ? demangle(t->name()) : std::string("unknown exception");
  }
}

void report_unraisable(const std::string& context, const std::exception_ptr& e) noexcept {
  try {
    if (auto hook = g_hook.load(std::memory_order_acquire)) {
      hook(context, e);
      return;
    }
    std::string line = context + ": " + describe(e) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
  } catch (...) {
    std::fputs("concur: an unraisable error could not be reported\n", stderr);
  }
}

void set_unraisable_hook(UnraisableHook hook) noexcept { g_hook.store(hook, std::memory_order_release); }

std::exception_ptr make_os_error(int err, const std::string& what) {
  std::string m = what + ": " + std::strerror(err);
  switch (err) {
    case ECONNREFUSED:
      return std::make_exception_ptr(ConnectionRefusedError(err, m));
    case ECONNRESET:
      return std::make_exception_ptr(ConnectionResetError(err, m));
    case ECONNABORTED:
      return std::make_exception_ptr(ConnectionAbortedError(err, m));
    case EPIPE:
    case ESHUTDOWN:
      return std::make_exception_ptr(BrokenPipeError(err, m));
    case EEXIST:
      return std::make_exception_ptr(FileExistsError(err, m));
    case ENOENT:
      return std::make_exception_ptr(FileNotFoundError(err, m));
    case EACCES:
    case EPERM:
      return std::make_exception_ptr(PermissionError(err, m));
    case ETIMEDOUT:
      return std::make_exception_ptr(TimeoutError(m));
    default:
      return std::make_exception_ptr(OSError(err, m));
  }
}

void throw_os_error(int err, const std::string& what) { std::rethrow_exception(make_os_error(err, what)); }

}  // namespace concur
