# One place that sets warnings and sanitizers the same way on every target (llama.cpp style).
function(keel_add_compile_flags target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-restrict -Wno-stringop-overflow -Wno-array-bounds -Winvalid-pch)
  # (-Wrestrict, -Wstringop-overflow and -Warray-bounds give false positives in libstdc++ 12 string code.)
  if(KEEL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(KEEL_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
