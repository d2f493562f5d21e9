#!/usr/bin/env python3
"""Checks that the docs deploy each CloudFormation template the way AWS
takes it. CloudFormation takes a template of at most 51,200 bytes in the
request; a larger one only from S3, and `aws cloudformation deploy` refuses
it without `--s3-bucket` ("Templates with a size greater than 51,200 bytes
must be deployed via an S3 Bucket"). So every `aws cloudformation deploy`
in the README and docs/ that names a template over the limit must name a
bucket too. moto takes any size, so the rehearsal alone would not show it.

Prints each template's size; exits non-zero naming each command, by file
and line, that would be refused.

Usage: scripts/check-template-uploads.py
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_BODY_MAX = 51_200
DEPLOY = "aws cloudformation deploy"


def commands(text: str):
    """(line, command) for each `aws cloudformation deploy` in Markdown: in a
    code block up to the line's end (continuations joined), in inline code up
    to the closing backtick, which may be lines later."""
    for match in re.finditer(re.escape(DEPLOY), text):
        start = match.start()
        line = text.count("\n", 0, start) + 1
        if start > 0 and text[start - 1] == "`":
            end = text.find("`", start)
        else:
            end = start
            while True:
                end = text.find("\n", end)
                if end < 0 or text[end - 1] != "\\":
                    break
                end += 1
        yield line, " ".join(text[start : end if end >= 0 else len(text)].replace("\\\n", " ").split())


def main() -> int:
    sizes = {f"deploy/{p.name}": p.stat().st_size for p in sorted((ROOT / "deploy").glob("*.yaml"))}
    for name, size in sizes.items():
        how = "from S3 (--s3-bucket)" if size > TEMPLATE_BODY_MAX else "in the request"
        print(f"{name}: {size:,} bytes, deployed {how}")
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    refused = checked = 0
    for doc in docs:
        for line, command in commands(doc.read_text()):
            named = re.search(r"--template-file\s+(\S+)", command)
            if not named or sizes.get(named.group(1), 0) <= TEMPLATE_BODY_MAX:
                continue
            checked += 1
            if "--s3-bucket" not in command:
                refused += 1
                print(f"{doc.relative_to(ROOT)}:{line}: {named.group(1)} is over {TEMPLATE_BODY_MAX:,} bytes: "
                      f"this deploy needs --s3-bucket: {command}")
    print(f"{checked} deploys of a template over {TEMPLATE_BODY_MAX:,} bytes checked, {refused} without a bucket")
    return 1 if refused or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
