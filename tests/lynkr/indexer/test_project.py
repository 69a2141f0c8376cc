"""Project facts from manifests and config files."""

from __future__ import annotations

from lynkr.indexer._project import detect_project
from lynkr.indexer._summary import read_coverage

from .conftest import write_tree

MANIFESTS = {
    "pyproject.toml": '[project]\ndependencies = ["fastapi>=0.1", "trio"]\n'
                      "[project.optional-dependencies]\ntest = ['pytest']\n[tool.ruff]\n",
    "Gemfile": "source 'x'\ngem 'rails', '7'\ngem \"rspec-rails\"\n",
    "go.mod": "module m\n\nrequire (\n\tgithub.com/gin-gonic/gin v1.9.0\n)\n",
    "Cargo.toml": '[dependencies]\ntokio = "1"\naxum = "0.7"\n',
    "pom.xml": "<project><artifactId>spring-boot-starter</artifactId></project>",
    ".rubocop.yml": "", ".flake8": "", ".prettierrc": "", "jest.config.js": "",
}


def test_frameworks_configs_and_test_commands_are_detected(tmp_path):
    """Each manifest adds its frameworks and test command; config files are listed by tool."""
    write_tree(tmp_path, MANIFESTS)
    facts = detect_project(tmp_path, sorted(MANIFESTS))
    assert {"FastAPI", "Trio", "pytest", "Rails", "Gin", "Tokio", "Axum",
            "Spring Boot"} <= set(facts.frameworks)
    assert {"ruff", "rubocop", "flake8", "prettier", "jest"} <= set(facts.configs)
    assert facts.configs["ruff"] == ["pyproject.toml [tool.ruff]"]
    assert facts.test_commands == ["cargo test", "bundle exec rspec", "go test ./...",
                                   "mvn test", "pytest"]  # in path order, each once
    assert facts.dependencies["pyproject.toml"] == 3


def test_a_broken_manifest_is_a_note_not_an_error(tmp_path):
    """Unparseable package.json is noted and the rest is still read."""
    write_tree(tmp_path, {"package.json": "{nope", "requirements.txt": "django==4\n# c\n"})
    facts = detect_project(tmp_path, ["package.json", "requirements.txt"])
    assert facts.notes[0].startswith("package.json: could not be read")
    assert facts.frameworks == ["Django"]


def test_the_package_manager_follows_the_lockfile(tmp_path):
    """A pnpm lockfile makes the test command `pnpm test`."""
    write_tree(tmp_path, {"package.json": '{"scripts": {"test": "vitest"}}',
                          "pnpm-lock.yaml": ""})
    assert detect_project(tmp_path, ["package.json"]).test_commands == ["pnpm test"]


def test_deep_manifests_belong_to_fixtures_and_are_ignored(tmp_path):
    """A package.json three levels down does not count for the project."""
    write_tree(tmp_path, {"a/b/c/package.json": '{"dependencies": {"react": "1"}}'})
    assert detect_project(tmp_path, ["a/b/c/package.json"]).frameworks == []


def test_coverage_files_are_read_or_reported_missing(tmp_path):
    """Istanbul JSON, Cobertura XML and lcov give a line percentage; missing ones say so."""
    write_tree(tmp_path, {
        "coverage/coverage-summary.json": '{"total": {"lines": {"pct": 87.5}}}',
        "coverage.xml": '<coverage line-rate="0.5"></coverage>',
        "lcov.info": "SF:a\nLH:3\nLF:4\nend_of_record\n",
        "broken.xml": "<coverage",
    })
    entries = read_coverage(tmp_path, ("coverage/coverage-summary.json", "coverage.xml",
                                       "lcov.info", "broken.xml", "missing.info"))
    assert [e.get("lines_pct") for e in entries[:3]] == [87.5, 50.0, 75.0]
    assert entries[3]["error"].startswith("unreadable")
    assert entries[4] == {"path": "missing.info", "status": "not found"}
