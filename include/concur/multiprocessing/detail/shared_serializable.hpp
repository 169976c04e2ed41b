#pragma once
// The one mixin behind every object that lives in shared memory and travels between processes
// as its handle (synchronize.hpp, sharedctypes.hpp, queues.hpp): from_handle() and cereal's
// save/load.
#include "concur/multiprocessing/shared_memory.hpp"

namespace concur::multiprocessing::detail {

/// CRTP base of `Derived`, which provides `SharedHandle handle() const` and a private
/// `explicit Derived(const SharedHandle&)` that attaches (befriend this class). A class derived
/// from such a class (BoundedSemaphore, JoinableQueue) inherits this mixin again for itself and
/// names its members with using-declarations.
template <class Derived>
class SharedSerializable {
 public:
  /// Attaches to the object at `h` (from handle(), in this or any other process). Throws
  /// FileNotFoundError if its segment is gone, std::invalid_argument if `h` is not a `Derived`
  /// (another kind, or another element type).
  static Derived from_handle(const SharedHandle& h) { return Derived(h); }

  /// cereal: an object travels as its handle; loading attaches to the object it names. (Loading
  /// first default-constructs, making a throwaway object whose segment is unlinked at once.)
  template <class Archive>
  void save(Archive& ar) const {
    ar(static_cast<const Derived&>(*this).handle());
  }
  template <class Archive>
  void load(Archive& ar) {
    SharedHandle h;
    ar(h);
    static_cast<Derived&>(*this) = Derived(h);
  }
};

}  // namespace concur::multiprocessing::detail
