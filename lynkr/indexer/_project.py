"""Project facts read from manifests and config files: frameworks, tooling, test command.

`detect_project(root, paths)` looks at the catalogued `paths` (so ignore rules apply)
for manifests (package.json, pyproject.toml, requirements*.txt, Gemfile, go.mod,
Cargo.toml, pom.xml, build.gradle, composer.json) and lint/format/test configs. A
manifest that cannot be read or parsed is noted in `notes`, never raised.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["ProjectFacts", "detect_project"]

_FRAMEWORKS = {
    "react": "React", "next": "Next.js", "vue": "Vue", "nuxt": "Nuxt", "svelte": "Svelte",
    "@angular/core": "Angular", "express": "Express", "fastify": "Fastify", "koa": "Koa",
    "@nestjs/core": "NestJS", "electron": "Electron", "react-native": "React Native",
    "jest": "Jest", "vitest": "Vitest", "mocha": "Mocha", "typescript": "TypeScript",
    "django": "Django", "flask": "Flask", "fastapi": "FastAPI", "starlette": "Starlette",
    "quart": "Quart", "trio": "Trio", "pytest": "pytest", "sqlalchemy": "SQLAlchemy",
    "pydantic": "Pydantic", "celery": "Celery", "numpy": "NumPy", "pandas": "pandas",
    "torch": "PyTorch", "rails": "Rails", "sinatra": "Sinatra", "rspec": "RSpec",
    "minitest": "Minitest", "github.com/gin-gonic/gin": "Gin", "github.com/labstack/echo": "Echo",
    "github.com/gorilla/mux": "gorilla/mux", "github.com/gofiber/fiber": "Fiber",
    "tokio": "Tokio", "actix-web": "Actix Web", "axum": "Axum", "rocket": "Rocket",
    "serde": "Serde", "spring-boot": "Spring Boot", "junit": "JUnit",
    "laravel/framework": "Laravel", "symfony/symfony": "Symfony",
}
_CONFIGS = [
    ("eslint", r"(^|/)(\.eslintrc(\.\w+)?|eslint\.config\.\w+)$"),
    ("prettier", r"(^|/)(\.prettierrc(\.\w+)?|prettier\.config\.\w+)$"),
    ("ruff", r"(^|/)\.?ruff\.toml$"), ("flake8", r"(^|/)\.flake8$"),
    ("pylint", r"(^|/)\.pylintrc$"), ("mypy", r"(^|/)mypy\.ini$"),
    ("rubocop", r"(^|/)\.rubocop\.yml$"), ("jest", r"(^|/)jest\.config\.\w+$"),
    ("vitest", r"(^|/)vitest\.config\.\w+$"), ("mocha", r"(^|/)\.mocharc(\.\w+)?$"),
    ("pytest", r"(^|/)(pytest\.ini|conftest\.py)$"), ("tox", r"(^|/)tox\.ini$"),
    ("golangci-lint", r"(^|/)\.golangci\.ya?ml$"), ("rustfmt", r"(^|/)\.?rustfmt\.toml$"),
    ("clippy", r"(^|/)\.?clippy\.toml$"), ("editorconfig", r"(^|/)\.editorconfig$"),
    ("biome", r"(^|/)biome\.jsonc?$"), ("stylelint", r"(^|/)\.stylelintrc(\.\w+)?$"),
    ("typescript", r"(^|/)tsconfig\.json$"), ("pre-commit", r"(^|/)\.pre-commit-config\.yaml$"),
]
_PYPROJECT_TOOLS = ("ruff", "black", "isort", "mypy", "pylint", "pytest", "coverage")
_MAX_DEPTH = 2  # manifests deeper than this belong to sub-projects or fixtures


@dataclass(slots=True)
class ProjectFacts:
    """What the manifests and config files say about the project."""

    manifests: list[str] = field(default_factory=list)
    frameworks: list[str] = field(default_factory=list)
    configs: dict[str, list[str]] = field(default_factory=dict)
    dependencies: dict[str, int] = field(default_factory=dict)  # manifest -> dependency count
    test_commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"manifests": self.manifests, "frameworks": sorted(set(self.frameworks)),
                "configs": self.configs, "dependencies": self.dependencies,
                "test_commands": self.test_commands, "notes": self.notes}


def _add_deps(facts: ProjectFacts, manifest: str, names: list[str]) -> None:
    facts.dependencies[manifest] = len(names)
    for name in names:
        key = name.lower().split("[")[0]
        if key in _FRAMEWORKS:
            facts.frameworks.append(_FRAMEWORKS[key])


def _package_json(root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    data = json.loads(text)
    deps = [*data.get("dependencies", {}), *data.get("devDependencies", {})]
    _add_deps(facts, rel, deps)
    if "test" in data.get("scripts", {}):
        tool = "pnpm" if (root / "pnpm-lock.yaml").exists() else (
            "yarn" if (root / "yarn.lock").exists() else "npm")
        facts.test_commands.append(f"{tool} test")


def _pyproject(_root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    data = tomllib.loads(text)
    project = data.get("project", {})
    deps = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        deps += extra
    deps += list(data.get("tool", {}).get("poetry", {}).get("dependencies", {}))
    _add_deps(facts, rel, [re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0] for d in deps])
    for tool in _PYPROJECT_TOOLS:
        if tool in data.get("tool", {}):
            facts.configs.setdefault(tool, []).append(f"{rel} [tool.{tool}]")
    if "pytest" in data.get("tool", {}) or any(d.lower().startswith("pytest") for d in deps):
        facts.test_commands.append("pytest")


def _requirements(_root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    names = [re.split(r"[<>=!~ ;\[]", line.strip(), maxsplit=1)[0] for line in text.splitlines()
             if line.strip() and not line.strip().startswith(("#", "-"))]
    _add_deps(facts, rel, names)
    if any(n.lower() == "pytest" for n in names):
        facts.test_commands.append("pytest")


def _gemfile(root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    names = re.findall(r"^\s*gem\s+['\"]([^'\"]+)", text, re.MULTILINE)
    _add_deps(facts, rel, names)
    if "rspec" in names or "rspec-rails" in names or (root / "spec").is_dir():
        facts.test_commands.append("bundle exec rspec")
    elif "rails" in names or "minitest" in names:
        facts.test_commands.append("bundle exec rake test")


def _go_mod(_root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    names = re.findall(r"^\s*(?:require\s+)?([\w.\-]+\.[\w]+/[\w.\-/]+)\s+v", text, re.MULTILINE)
    _add_deps(facts, rel, [re.sub(r"/v\d+$", "", n) for n in names])
    facts.test_commands.append("go test ./...")


def _cargo(_root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    data = tomllib.loads(text)
    _add_deps(facts, rel, [*data.get("dependencies", {}), *data.get("dev-dependencies", {})])
    facts.test_commands.append("cargo test")


def _pom(_root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    names = re.findall(r"<artifactId>([^<]+)</artifactId>", text)
    _add_deps(facts, rel, [("spring-boot" if n.startswith("spring-boot") else
                            "junit" if n.startswith("junit") else n) for n in names])
    facts.test_commands.append("mvn test")


def _gradle(root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    _add_deps(facts, rel, ["spring-boot"] if "org.springframework.boot" in text else [])
    facts.test_commands.append("./gradlew test" if (root / "gradlew").exists() else "gradle test")


def _composer(_root: Path, rel: str, text: str, facts: ProjectFacts) -> None:
    data = json.loads(text)
    _add_deps(facts, rel, [*data.get("require", {}), *data.get("require-dev", {})])


_MANIFESTS = {
    "package.json": _package_json, "pyproject.toml": _pyproject, "Gemfile": _gemfile,
    "go.mod": _go_mod, "Cargo.toml": _cargo, "pom.xml": _pom, "build.gradle": _gradle,
    "build.gradle.kts": _gradle, "composer.json": _composer,
}


def _reader(name: str) -> Any:
    if name in _MANIFESTS:
        return _MANIFESTS[name]
    if re.fullmatch(r"requirements[\w.-]*\.txt", name):
        return _requirements
    return None


def detect_project(root: Path, paths: list[str]) -> ProjectFacts:
    """Facts about the project at `root`, from its catalogued `paths`."""
    facts = ProjectFacts()
    for rel in paths:
        pure = PurePosixPath(rel)
        if len(pure.parts) > _MAX_DEPTH:
            continue
        for tool, pattern in _CONFIGS:
            if re.search(pattern, rel):
                facts.configs.setdefault(tool, []).append(rel)
        reader = _reader(pure.name)
        if reader is None:
            continue
        facts.manifests.append(rel)
        try:
            reader(root, rel, (root / rel).read_text(errors="replace"), facts)
        except (OSError, ValueError, tomllib.TOMLDecodeError, AttributeError, TypeError) as exc:
            facts.notes.append(f"{rel}: could not be read ({exc})")
    if "pytest" in facts.configs and "pytest" not in facts.test_commands:
        facts.test_commands.append("pytest")
    facts.test_commands = list(dict.fromkeys(facts.test_commands))
    return facts
