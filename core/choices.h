// Settings that name one of a few choices (a config file's "optimizer: adam"), held as enums. An enum E
// takes part by specialising Choices<E> with its names in the enum's order; choice_name and parse_choice
// then convert both ways, and a wrong name gets one message listing the choices.
#pragma once

#include <cstddef>
#include <string>

#include "core/error.h"

namespace livernet {

template <typename E>
struct Choices;  // static constexpr std::array<const char*, N> names;

template <typename E>
const char* choice_name(E value) {
  return Choices<E>::names[static_cast<std::size_t>(value)];
}

// `text` as one of E's choices; anything else throws "<where>: 'text' is not one of a, b, c".
template <typename E>
E parse_choice(const std::string& where, const std::string& text) {
  const auto& names = Choices<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (text == names[i]) return static_cast<E>(i);
  std::string list;
  for (const char* n : names) list += (list.empty() ? "" : ", ") + std::string(n);
  LN_FAIL(where, ": '", printable(text), "' is not one of ", list);
}

}  // namespace livernet
