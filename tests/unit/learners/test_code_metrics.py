from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from learners.code_metrics import CodeMetrics, compute_code_metrics


def python(code: str) -> CodeMetrics:
    return compute_code_metrics(textwrap.dedent(code), "python")


def test_counts_functions_methods_and_classes_but_not_lambdas() -> None:
    metrics = python(
        """
        class Shape:
            def area(self) -> float:
                return 0.0

            async def load(self) -> None:
                def helper() -> None: ...

        square = lambda side: side * side
        """
    )
    assert (metrics.functions, metrics.classes) == (3, 1)
    assert (metrics.method, metrics.language, metrics.parse_error) == (
        "python-ast",
        "python",
        False,
    )


def test_complexity_counts_if_elif_for_and_boolean_operands() -> None:
    metrics = python(
        """
        def classify(n, flags):
            if n > 10 and flags:
                return "big"
            elif n > 5:
                return "medium"
            for flag in flags:
                print(flag)
            return "small"
        """
    )
    # if + and + elif + for = 4 decision points
    assert metrics.cyclomatic_complexity == 5
    assert metrics.max_function_complexity == 5


def test_nested_functions_are_measured_on_their_own() -> None:
    metrics = python(
        """
        def outer(items):
            def keep(item):
                return item if item else None
            if items:
                return [keep(i) for i in items if i]
            return []
        """
    )
    # outer: if + comprehension for + its if = 3; keep: conditional expression = 1
    assert metrics.cyclomatic_complexity == 1 + 4
    assert metrics.max_function_complexity == 1 + 3


def test_radon_rules_for_match_loop_else_and_try() -> None:
    metrics = python(
        """
        def handle(command, retries):
            match command:
                case "start":
                    pass
                case "stop" | "halt":
                    pass
                case _:
                    pass
            while retries:
                retries -= 1
            else:
                pass
            try:
                pass
            except ValueError:
                pass
            except KeyError:
                pass
            with open("f") as f:
                assert f
        """
    )
    # 2 cases (the wildcard is the else) + while and its else + 2 handlers; with/assert add 0
    assert metrics.max_function_complexity == 1 + 2 + 2 + 2


def test_type_hint_coverage_three_of_four_slots() -> None:
    metrics = python(
        """
        def send(message: str, retries, *extra: int) -> None:
            pass
        """
    )
    assert metrics.type_hint_coverage == pytest.approx(3 / 4)


def test_self_and_cls_of_methods_are_not_slots() -> None:
    metrics = python(
        """
        class Repo:
            def get(self, key: str) -> int:
                return 0

            @classmethod
            def create(cls) -> Repo:
                return cls()
        """
    )
    assert metrics.type_hint_coverage == 1.0


def test_self_of_a_plain_function_is_a_slot() -> None:
    assert python("def get(self) -> int:\n    return 0\n").type_hint_coverage == pytest.approx(
        1 / 2
    )


def test_type_hint_coverage_is_none_without_functions() -> None:
    assert python("x: int = 1\n").type_hint_coverage is None


def test_docstring_coverage_counts_module_classes_and_functions() -> None:
    metrics = python(
        '''
        """Module docstring."""

        class Cache:
            def get(self):
                """Return the value."""

            def _evict(self):
                pass
        '''
    )
    # module and get documented; Cache and _evict not
    assert metrics.docstring_coverage == pytest.approx(2 / 4)


def test_comment_lines_are_not_code_lines_unless_inside_a_string() -> None:
    metrics = python(
        '''
        # a comment

        TEMPLATE = """
        # a heading in a string
        """
        x = 1  # trailing comment
        '''
    )
    assert (metrics.lines, metrics.code_lines) == (5, 4)


@pytest.mark.parametrize("language", ["python", "typescript", "sql"])
def test_blank_code_has_nothing_to_measure(language: str) -> None:
    metrics = compute_code_metrics(" \n\t\n", language)
    assert (metrics.lines, metrics.functions, metrics.cyclomatic_complexity) == (0, 0, 0)
    assert metrics.type_hint_coverage is None
    assert metrics.docstring_coverage is None
    assert not metrics.parse_error


@pytest.mark.parametrize("alias", ["PY", "Python3", " python "])
def test_python_aliases_use_the_ast(alias: str) -> None:
    metrics = compute_code_metrics("def f():\n    pass\n", alias)
    assert (metrics.language, metrics.method, metrics.functions) == ("python", "python-ast", 1)


def test_syntax_error_falls_back_to_the_heuristic() -> None:
    metrics = python(
        """
        def broken(x:
            if x and y:
                return 1
        """
    )
    assert metrics.parse_error
    assert metrics.method == "heuristic"
    assert metrics.functions == 1
    assert metrics.cyclomatic_complexity == 3  # if + and
    assert metrics.docstring_coverage is None


def test_null_bytes_are_a_parse_error_not_an_exception() -> None:
    assert compute_code_metrics("x = 1\x00\n", "python").parse_error


@pytest.mark.parametrize("language", ["python", "typescript", "ruby", "sql"])
@pytest.mark.parametrize("code", ["(" * 10000, "x" + "+x" * 50000, "[" * 500 + "]" * 500])
def test_pathological_nesting_never_raises(code: str, language: str) -> None:
    metrics = compute_code_metrics(code, language)
    assert metrics.lines == 1


def test_typescript_heuristic() -> None:
    code = textwrap.dedent(
        """
        /** Adds two numbers. */
        export function add(a: number, b: number): number {
          return a > 0 && b > 0 ? a + b : 0;
        }

        const double = (x: number) => x * 2;
        const identity = y => y;

        // A box of labels.
        export class Box {
          private items: string[] = [];

          put(item: string, onAdd: (count: number) => void): void {
            if (item === "if (x) {") { this.items.push(item); }
          }
        }

        interface Shape { area(): number; }
        """
    )
    metrics = compute_code_metrics(code, "TS")
    assert (metrics.language, metrics.method) == ("typescript", "heuristic")
    assert (metrics.functions, metrics.classes) == (4, 2)  # the callback type is no function
    assert (metrics.lines, metrics.code_lines) == (14, 12)
    assert metrics.cyclomatic_complexity == 1 + 3  # &&, ?, if; the "if" in the string is not
    assert metrics.max_function_complexity == 1 + 2  # add: && and ?
    assert metrics.type_hint_coverage == pytest.approx(5 / 6)  # y is untyped
    assert metrics.docstring_coverage == pytest.approx(1 / 4)


def test_sql_heuristic() -> None:
    code = textwrap.dedent(
        """
        -- orders by size
        SELECT id,
               CASE WHEN total > 100 THEN 'big -- not a comment'
                    WHEN total > 10 THEN 'mid' ELSE 'small' END
        FROM orders
        WHERE status = 'open' AND region = 'EU' OR vip;
        DROP TABLE IF EXISTS scratch;
        """
    )
    metrics = compute_code_metrics(code, "SQL")
    assert (metrics.language, metrics.lines, metrics.code_lines) == ("sql", 7, 6)
    assert metrics.cyclomatic_complexity == 1 + 4  # 2 WHEN, AND, OR; "IF EXISTS" is no branch
    assert (metrics.functions, metrics.max_function_complexity) == (0, 0)
    assert metrics.type_hint_coverage is None
    assert metrics.docstring_coverage is None


def test_rust_doc_comments_and_question_mark_operator() -> None:
    code = textwrap.dedent(
        """
        /// Parses a port.
        #[inline]
        pub fn port<'a>(text: &'a str) -> Result<u16, Error> {
            let value = text.parse::<u16>()?;
            if value == 0 { return Err(Error::Zero); }
            Ok(value)
        }

        struct Config { port: u16 }

        fn undocumented() {}
        """
    )
    metrics = compute_code_metrics(code, "rust")
    assert (metrics.functions, metrics.classes) == (2, 1)
    assert metrics.cyclomatic_complexity == 2  # the `?` operator is no ternary
    assert metrics.docstring_coverage == pytest.approx(1 / 2)


def test_unknown_language_uses_c_like_rules() -> None:
    code = "// entry point\nint main(void) {\n  if (a || b) { return 1; }\n  return 0;\n}\n"
    metrics = compute_code_metrics(code, "Zig")
    assert (metrics.language, metrics.method) == ("zig", "heuristic")
    assert (metrics.lines, metrics.code_lines, metrics.functions) == (5, 4, 1)
    assert metrics.cyclomatic_complexity == metrics.max_function_complexity == 3
    assert metrics.type_hint_coverage is None
    assert metrics.docstring_coverage is None


LANGUAGES = ["python", "typescript", "javascript", "java", "go", "rust", "c", "cpp", "csharp",
             "kotlin", "swift", "php", "ruby", "shell", "r", "sql", "unknown"]  # fmt: skip
CODE_ALPHABET = "(){}[]<>;:,.=?&|'\"`/*\\#-@\n\t abcdefilnorstuw_0"


@given(
    code=st.one_of(st.text(), st.text(alphabet=CODE_ALPHABET)),
    language=st.sampled_from(LANGUAGES),
)
def test_any_text_gives_sane_metrics(code: str, language: str) -> None:
    metrics = compute_code_metrics(code, language)
    counts = [metrics.lines, metrics.code_lines, metrics.functions, metrics.classes]
    assert min(counts) >= 0
    assert metrics.code_lines <= metrics.lines
    assert metrics.cyclomatic_complexity >= (1 if code.strip() else 0)
    if metrics.functions:
        assert 1 <= metrics.max_function_complexity <= metrics.cyclomatic_complexity
    else:
        assert metrics.max_function_complexity == 0
    for coverage in (metrics.type_hint_coverage, metrics.docstring_coverage):
        assert coverage is None or 0.0 <= coverage <= 1.0
