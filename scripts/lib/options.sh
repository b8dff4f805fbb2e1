# Command-line options for livernet's scripts: one parser instead of a case statement in each script.
#
#   . "$here/scripts/lib/options.sh"
#   out="" budget=330 sanitize=0                       # the defaults
#   parse_options "out budget" "sanitize" "$@"         # options that take a value, then flags
#
# `--some-name VALUE` sets the variable some_name; `--flag` sets flag=1; -h/--help prints the script's
# header comment (line 2 up to the first line that is not a comment) and exits 0. Anything else is
# "<script>: unknown option 'X' (see --help)" and exit code 2, unless PASS_THROUGH names an array: then it
# is appended there (a script that hands options on to another).
parse_options() {
  local valued=" $1 " flags=" $2 " name var
  shift 2
  while (($#)); do
    name=${1#--}
    var=${name//-/_}
    if [[ $1 == -h || $1 == --help ]]; then
      sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'
      exit 0
    elif [[ $1 == --* && $valued == *" $name "* ]]; then
      if (($# < 2)); then
        echo "$(basename "$0"): $1 needs a value (see --help)" >&2
        exit 2
      fi
      printf -v "$var" '%s' "$2"
      shift
    elif [[ $1 == --* && $flags == *" $name "* ]]; then
      printf -v "$var" '%s' 1
    elif [[ -n ${PASS_THROUGH:-} ]]; then
      local -n ln_pass_=$PASS_THROUGH
      ln_pass_+=("$1")
    else
      echo "$(basename "$0"): unknown option '$1' (see --help)" >&2
      exit 2
    fi
    shift
  done
}
