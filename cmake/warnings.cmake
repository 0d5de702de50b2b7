# wsgate_warnings: the warning set every target of ours compiles with.
add_library(wsgate_warnings INTERFACE)
target_compile_options(wsgate_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough)
if(WSGATE_WERROR)
  target_compile_options(wsgate_warnings INTERFACE -Werror)
endif()
