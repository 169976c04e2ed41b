// serialize.hpp is header-only; this file keeps the module's source list stable.
