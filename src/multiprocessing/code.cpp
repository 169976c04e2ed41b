// Code identity across processes (detail/task.hpp): module build-id + offset, through dladdr
// and dl_iterate_phdr (the GNU build-id note that the linker writes into every module).
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>

#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_map>

#include "concur/multiprocessing/detail/task.hpp"

namespace concur::multiprocessing::detail {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char k[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += k[p[i] >> 4];
    s += k[p[i] & 15];
  }
  return s;
}

struct Module {
  std::uintptr_t base;
  std::string build_id;
  std::string name;
};

/// The build-id of the module loaded at `info` ("" when it has none).
std::string build_id_of(const dl_phdr_info* info) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    auto* p = reinterpret_cast<const unsigned char*>(info->dlpi_addr + ph.p_vaddr);
    const unsigned char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const unsigned char* name = p + sizeof(ElfW(Nhdr));
      const unsigned char* desc = name + ((nh->n_namesz + 3) & ~3U);
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        return hex(desc, nh->n_descsz);
      }
      p = desc + ((nh->n_descsz + 3) & ~3U);
    }
  }
  return {};
}

std::vector<Module> loaded_modules() {
  std::vector<Module> mods;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        auto* out = static_cast<std::vector<Module>*>(data);
        out->push_back(Module{info->dlpi_addr, build_id_of(info), info->dlpi_name ? info->dlpi_name : ""});
        return 0;
      },
      &mods);
  return mods;
}

std::mutex& cache_mutex() {
  static std::mutex* m = [] {
    auto* mu = new std::mutex();
    // A child forked while another thread held it must not inherit it held.
    ::pthread_atfork(nullptr, nullptr, [] { new (&cache_mutex()) std::mutex(); });
    return mu;
  }();
  return *m;
}
std::unordered_map<std::uintptr_t, std::string>& id_by_base() {
  static std::unordered_map<std::uintptr_t, std::string> c;
  return c;
}
std::unordered_map<std::string, std::uintptr_t>& base_by_id() {
  static std::unordered_map<std::string, std::uintptr_t> c;
  return c;
}

void refresh_cache() {
  for (const Module& m : loaded_modules()) {
    if (m.build_id.empty()) continue;
    id_by_base()[m.base] = m.build_id;
    base_by_id()[m.build_id] = m.base;
  }
}

}  // namespace

CodeRef code_ref(const void* p) {
  Dl_info info{};
  if (::dladdr(p, &info) == 0 || info.dli_fbase == nullptr) {
    throw std::invalid_argument("concur::multiprocessing: the function is not in a loaded module");
  }
  auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
  std::lock_guard g(cache_mutex());
  auto it = id_by_base().find(base);
  if (it == id_by_base().end()) {
    refresh_cache();
    it = id_by_base().find(base);
  }
  if (it == id_by_base().end()) {
    throw std::invalid_argument(std::string("concur::multiprocessing: the module holding the function (") +
                                (info.dli_fname ? info.dli_fname : "?") +
                                ") has no GNU build-id; link with -Wl,--build-id (the default on Debian)");
  }
  return CodeRef{it->second, reinterpret_cast<std::uintptr_t>(p) - base};
}

const void* resolve(const CodeRef& ref) {
  std::lock_guard g(cache_mutex());
  auto it = base_by_id().find(ref.build_id);
  if (it == base_by_id().end()) {
    refresh_cache();
    it = base_by_id().find(ref.build_id);
  }
  if (it == base_by_id().end()) {
    throw CodeMismatchError("concur::multiprocessing: no module with build-id " + ref.build_id +
                            " is loaded in this process: the worker runs a different binary than the parent");
  }
  return reinterpret_cast<const void*>(it->second + ref.offset);
}

}  // namespace concur::multiprocessing::detail
