# mypy: disable-error-code="no-untyped-call"
# (pyHanko's PDF object and diff-analysis APIs are unannotated; we call them on purpose.)
"""What changed after signing: pyHanko's difference analysis, closed where it is too lax or too
strict for our corpus (tests/corpus/pdf).

pyHanko's :data:`~pyhanko.sign.diff_analysis.DEFAULT_DIFF_POLICY` reviews every revision added
after a signed one and whitelists known-harmless updates. This module keeps all of its rules and
adjusts four things, each small and tested (tests/unit/signing/test_verify_diffcheck.py):

* **Shadow "replace via overlay"** (stricter): pyHanko treats any change of a text field's value
  or appearance as form filling. A text field that already showed a value when it was signed is
  part of what the signer saw; redrawing it or changing its value afterwards alters the signed
  display (``mkl-testarea-itext7/replace-shadow-file-signed-manipulated.pdf``), so it counts as
  ``other``. Filling fields that were empty at signing time stays permitted.
* **Choice fields** (laxer): selecting an entry in a list box updates ``/I`` (selected indices,
  ISO 32000-1 § 12.7.4.4) together with ``/V``; that is form filling.
* **Markup annotations** (laxer, approval signatures only): comments added to a page's
  ``/Annots`` (Text, FreeText, Highlight, ... never widgets, links or file attachments) and the
  named appearance streams Acrobat keeps for their icons under ``/Root /Names /AP`` are
  permitted at the ANNOTATIONS level, as ISO 32000-1 § 12.8.2.2 allows. Removing or altering an
  annotation that existed when signed is not.
* **Structure tree** (laxer): tagged-PDF structure (``/Root /StructTreeRoot``) updated by a later
  signer does not change what is displayed; objects used only inside the structure tree may
  change. An object also used elsewhere still needs its own justification.
* **Page resources copied with a new signature widget** (laxer, one shape only): a revision that
  adds a signature or document time-stamp field must rewrite the page its widget is bound to
  (the widget joins the page's ``/Annots``, ISO 32000-2 § 12.5.2). Some signers
  (SecCommerce, ``esig-dss/Signature-P-DE_SCI-4.pdf``) write the page's ``/Resources`` anew
  while doing so: a fresh object equal, entry for entry and reference for reference, to the
  one it replaces. Nothing displayed can differ, so that page update stays an LTA update
  (ISO 32000-2 § 12.8.2.2: DSS and document time-stamp updates are no change even under
  P=1). Any other difference in the page, a ``/Resources`` that differs in one entry or
  reuses an older object, or the same copy in a revision adding no signature field, is
  still ``other``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, RawPdfPath
from pyhanko.sign.diff_analysis import (
    DiffResult,
    ModificationLevel,
    StandardDiffPolicy,
    SuspiciousModification,
)
from pyhanko.sign.diff_analysis.commons import compare_dicts
from pyhanko.sign.diff_analysis.constants import ROOT_EXEMPT_STRICT_COMPARISON, VALUE_UPDATE_KEYS
from pyhanko.sign.diff_analysis.form_rules_api import (
    FieldComparisonContext,
    FormUpdate,
    FormUpdatingRule,
)
from pyhanko.sign.diff_analysis.rules.file_structure_rules import (
    CatalogModificationRule,
    ObjectStreamRule,
    XrefStreamRule,
)
from pyhanko.sign.diff_analysis.rules.form_field_rules import (
    DSSCompareRule,
    GenericFieldModificationRule,
    SigFieldCreationRule,
    SigFieldModificationRule,
)
from pyhanko.sign.diff_analysis.rules.metadata_rules import DocInfoRule, MetadataUpdateRule
from pyhanko.sign.diff_analysis.rules_api import (
    QualifiedWhitelistRule,
    ReferenceUpdate,
    RelativeContext,
)
from pyhanko.sign.fields import FieldMDPSpec, MDPPerm

logger = logging.getLogger(__name__)

# Bound every walk of attacker-controlled object graphs.
MAX_WALK_NODES = 200_000

# Annotation subtypes a reader may add to an approved document as comments. Not here on purpose:
# Widget (form rules handle them), Link/Screen/Movie/RichMedia/3D (actions, media),
# FileAttachment (embeds files), Watermark/PrinterMark/TrapNet (page marks).
MARKUP_SUBTYPES = frozenset(
    {
        "/Text",
        "/FreeText",
        "/Line",
        "/Square",
        "/Circle",
        "/Polygon",
        "/PolyLine",
        "/Highlight",
        "/Underline",
        "/Squiggly",
        "/StrikeOut",
        "/Stamp",
        "/Caret",
        "/Ink",
        "/Popup",
    }
)

_CATALOG_IGNORED = frozenset(ROOT_EXEMPT_STRICT_COMPARISON) | {"/Names", "/StructTreeRoot"}


def _deref(obj: Any) -> Any:
    return obj.get_object() if isinstance(obj, generic.IndirectObject) else obj


def _raw_ref(container: generic.DictionaryObject, key: str) -> generic.Reference | None:
    try:
        value = container.raw_get(key)
    except KeyError:
        return None
    return value.reference if isinstance(value, generic.IndirectObject) else None


class _CatalogRule(CatalogModificationRule):
    """pyHanko's catalog rule, leaving ``/Names`` and ``/StructTreeRoot`` to the rules below.

    The catalog itself is approved at ANNOTATIONS level when its ``/Names`` entry changed (only
    the appearance-name tree may differ, checked by :class:`_NamedAppearanceRule`).
    """

    def __init__(self) -> None:
        super().__init__(ignored_keys=_CATALOG_IGNORED)

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        old_names = old.root.raw_get("/Names") if "/Names" in old.root else None
        new_names = new.root.raw_get("/Names") if "/Names" in new.root else None
        names_changed = _deref(old_names) != _deref(new_names) or (
            isinstance(new_names, generic.IndirectObject)
            and new_names.reference in set(new.explicit_refs_in_revision())
        )
        for level, update in super().apply_qualified(old, new):
            if names_changed and update.updated_ref == new.root_ref:
                level = max(level, ModificationLevel.ANNOTATIONS)
            yield level, update


class _NamedAppearanceRule(QualifiedWhitelistRule):
    """Allow ``/Root /Names`` to gain or change only its ``/AP`` (named appearance) tree."""

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        new_names = _deref(new.root.get("/Names")) if "/Names" in new.root else None
        old_names = _deref(old.root.get("/Names")) if "/Names" in old.root else None
        if new_names is None:
            if old_names is not None:
                raise SuspiciousModification("The document name dictionary was removed.")
            return
        if not isinstance(new_names, generic.DictionaryObject):
            raise SuspiciousModification("/Names is not a dictionary.")
        compare_dicts(old_names or generic.DictionaryObject(), new_names, frozenset({"/AP"}))
        new_refs = set(new.explicit_refs_in_revision())
        names_ref = _raw_ref(new.root, "/Names")
        if names_ref is not None and names_ref in new_refs:
            yield ModificationLevel.ANNOTATIONS, ReferenceUpdate(names_ref)
        if "/AP" in new_names:
            for ref in _walk_refs(new_names.raw_get("/AP"), new_refs):
                yield ModificationLevel.ANNOTATIONS, ReferenceUpdate(ref)


def _walk_refs(
    start: Any, new_refs: set[generic.Reference], skip_keys: frozenset[str] = frozenset()
) -> Iterator[generic.Reference]:
    """References reachable from ``start`` that were written in the new revision (bounded)."""
    seen: set[generic.Reference] = set()
    stack = [start]
    visited = 0
    while stack:
        visited += 1
        if visited > MAX_WALK_NODES:
            raise SuspiciousModification("Object graph too large to review.")
        obj = stack.pop()
        if isinstance(obj, generic.IndirectObject):
            ref = obj.reference
            if ref in seen:
                continue
            seen.add(ref)
            if ref in new_refs:
                yield ref
            obj = obj.get_object()
        if isinstance(obj, generic.DictionaryObject):  # includes streams
            for key in obj:
                if key not in skip_keys:
                    stack.append(obj.raw_get(key))
        elif isinstance(obj, generic.ArrayObject):
            for i in range(len(obj)):
                stack.append(obj.raw_get(i))


def _page_refs(resolver: HistoricalResolver) -> list[generic.Reference]:
    """Page object references of a revision, in order (bounded, loop-safe)."""
    out: list[generic.Reference] = []
    seen: set[generic.Reference] = set()
    pages_ref = _raw_ref(resolver.root, "/Pages")
    stack: list[generic.Reference] = [pages_ref] if pages_ref else []
    while stack and len(seen) < MAX_WALK_NODES:
        ref = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        node = resolver(ref)
        if not isinstance(node, generic.DictionaryObject):
            continue
        kids = _deref(node.raw_get("/Kids")) if "/Kids" in node else None
        if isinstance(kids, generic.ArrayObject):
            for i in reversed(range(len(kids))):
                kid = kids.raw_get(i)
                if isinstance(kid, generic.IndirectObject):
                    stack.append(kid.reference)
        elif node.get("/Type") == "/Page" or "/Kids" not in node:
            out.append(ref)
    return out


def _annot_refs(page: generic.DictionaryObject) -> list[Any]:
    if "/Annots" not in page:
        return []
    annots = _deref(page.raw_get("/Annots"))
    if not isinstance(annots, generic.ArrayObject):
        return []
    return [annots.raw_get(i) for i in range(len(annots))]


class _MarkupAnnotationRule(QualifiedWhitelistRule):
    """Allow markup annotations (comments) to be added to pages after an approval signature."""

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        new_refs = set(new.explicit_refs_in_revision())
        for page_ref in _page_refs(new):
            if page_ref not in new_refs or old.is_ref_unassignable(page_ref):
                continue
            old_page = old(page_ref)
            new_page = new(page_ref)
            if not isinstance(old_page, generic.DictionaryObject) or not isinstance(
                new_page, generic.DictionaryObject
            ):
                continue
            old_annots = _annot_refs(old_page)
            new_annots = _annot_refs(new_page)
            old_set = {a.reference for a in old_annots if isinstance(a, generic.IndirectObject)}
            added = [
                a
                for a in new_annots
                if isinstance(a, generic.IndirectObject) and a.reference not in old_set
            ]
            markup = [a for a in added if _deref(a).get("/Subtype") in MARKUP_SUBTYPES]
            if not markup:
                continue  # nothing for this rule: widgets are the form rules' business
            compare_dicts(old_page, new_page, frozenset({"/Annots"}))
            kept = [a.reference for a in new_annots if isinstance(a, generic.IndirectObject)]
            if not old_set <= set(kept):
                raise SuspiciousModification(
                    f"Annotations that existed when signed were removed from page {page_ref}."
                )
            yield ModificationLevel.ANNOTATIONS, ReferenceUpdate(page_ref)
            annots_ref = _raw_ref(new_page, "/Annots")
            if annots_ref is not None and annots_ref in new_refs:
                yield ModificationLevel.ANNOTATIONS, ReferenceUpdate(annots_ref)
            for annot in markup:
                ref = annot.reference
                if not old.is_ref_unassignable(ref):
                    raise SuspiciousModification(f"Annotation {ref} overwrites an older object.")
                yield ModificationLevel.ANNOTATIONS, ReferenceUpdate(ref)
                # its appearance streams and popup: new objects only (old ones stay as they are)
                for dep in _walk_refs(annot, new_refs, skip_keys=frozenset({"/P", "/Parent"})):
                    if old.is_ref_unassignable(dep):
                        yield ModificationLevel.ANNOTATIONS, ReferenceUpdate(dep)


class _StructTreeRule(QualifiedWhitelistRule):
    """Allow objects used only in the tagged-PDF structure tree to change."""

    def apply_qualified(
        self, old: HistoricalResolver, new: HistoricalResolver
    ) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        if "/StructTreeRoot" not in new.root:
            if "/StructTreeRoot" in old.root:
                raise SuspiciousModification("The structure tree was removed.")
            return
        new_refs = set(new.explicit_refs_in_revision())
        # The walk does not follow links out of the tree (pages, content, annotations).
        skip = frozenset({"/Pg", "/Obj", "/Stm", "/StmOwn", "/P"})
        old._load_reverse_xref_cache()  # pyHanko's own usage index (internal API, pinned)
        for ref in _walk_refs(new.root.raw_get("/StructTreeRoot"), new_refs, skip):
            if old.is_ref_unassignable(ref):
                yield ModificationLevel.FORM_FILLING, ReferenceUpdate(ref)
                continue
            usages = old._get_usages_of_ref(ref)
            if all(_in_struct_tree(p) for p in usages):
                yield ModificationLevel.FORM_FILLING, ReferenceUpdate(ref)


def _in_struct_tree(path: RawPdfPath) -> bool:
    parts = path.path
    return len(parts) >= 2 and parts[0] == "/Root" and parts[1] == "/StructTreeRoot"


# ---------------------------------------------------------------------------------------------
# new signature widgets bound to pages


class _SigFieldCreationRule(SigFieldCreationRule):
    """pyHanko's rule for new signature and time-stamp fields, binding their widgets to pages
    ourselves: as pyHanko does, except that a page's ``/Resources`` may be a fresh exact copy."""

    def __init__(self) -> None:
        super().__init__(approve_widget_bindings=False)

    def apply(self, context: FieldComparisonContext) -> Iterator[tuple[ModificationLevel, Any]]:
        yield from super().apply(context)
        widgets = _new_sig_widgets(context)
        if widgets:
            for update in _widget_bindings(context.old, context.new, widgets):
                yield ModificationLevel.LTA_UPDATES, update


def _new_sig_widgets(context: FieldComparisonContext) -> dict[generic.Reference, str]:
    """The widget annotations of the signature fields created in ``context.new``."""
    out: dict[generic.Reference, str] = {}
    for name, spec in context.field_specs.items():
        if spec.field_type != "/Sig" or spec.old_field_ref or spec.new_field_ref is None:
            continue
        field = context.new(spec.new_field_ref)
        kids = _deref(field.raw_get("/Kids")) if "/Kids" in field else None
        if not isinstance(kids, generic.ArrayObject):
            out[spec.new_field_ref] = name  # the field is its own widget
            continue
        for i in range(len(kids)):
            kid = kids.raw_get(i)
            if isinstance(kid, generic.IndirectObject) and "/T" not in kid.get_object():
                out[kid.reference] = name
    return out


def _widget_bindings(
    old: HistoricalResolver, new: HistoricalResolver, widgets: dict[generic.Reference, str]
) -> Iterator[FormUpdate]:
    """Pages that gained only the given widgets in ``/Annots`` (pyHanko's widget binding), with
    the one difference :func:`_copied_resources` tolerates."""
    pages = _page_refs(new)
    if pages != _page_refs(old):
        raise SuspiciousModification("Unexpected change to page tree structure.")
    for page_ref in pages:
        old_page, new_page = old(page_ref), new(page_ref)
        if not isinstance(new_page, generic.DictionaryObject) or "/Annots" not in new_page:
            continue
        old_annots = {a.reference for a in _annot_refs(old_page) if _is_ref(a)}
        new_list = _annot_refs(new_page)
        if not all(_is_ref(a) for a in new_list):
            raise SuspiciousModification(f"Page {page_ref} has direct annotation objects.")
        new_annots = {a.reference for a in new_list}
        if new_annots == old_annots:
            continue
        if old_annots - new_annots:
            raise SuspiciousModification(
                f"Annotations {old_annots - new_annots} were deleted from page {page_ref}."
            )
        added = new_annots - old_annots
        if added - widgets.keys():
            raise SuspiciousModification(
                f"The newly added annotations {added - widgets.keys()} were not recognised."
            )
        field_name = widgets[next(iter(added))] if len(added) == 1 else None
        compare_dicts(old_page, new_page, frozenset({"/Annots", "/Resources"}))
        resources_ref = _copied_resources(old, new, old_page, new_page)
        locked_ok = field_name is not None
        yield FormUpdate(updated_ref=page_ref, field_name=field_name, valid_when_locked=locked_ok)
        annots_ref = _raw_ref(new_page, "/Annots")
        if annots_ref is not None and (
            annots_ref == _raw_ref(old_page, "/Annots") or old.is_ref_unassignable(annots_ref)
        ):
            yield FormUpdate(
                updated_ref=annots_ref,
                field_name=field_name,
                valid_when_locked=locked_ok,
                context_checked=RelativeContext(page_ref, RawPdfPath("/Annots")),
            )
        if resources_ref is not None:
            yield FormUpdate(
                updated_ref=resources_ref, field_name=field_name, valid_when_locked=locked_ok
            )


def _is_ref(obj: Any) -> bool:
    return isinstance(obj, generic.IndirectObject)


def _copied_resources(
    old: HistoricalResolver,
    new: HistoricalResolver,
    old_page: generic.DictionaryObject,
    new_page: generic.DictionaryObject,
) -> generic.Reference | None:
    """The fresh object a rewritten page's ``/Resources`` points to, when it is an exact copy
    of the resources the page had (same entries, same values, same references: nothing drawn
    can differ); None when ``/Resources`` is unchanged. Anything else is suspicious."""
    if ("/Resources" in old_page) != ("/Resources" in new_page):
        raise SuspiciousModification("The page's /Resources entry was added or removed.")
    if "/Resources" not in new_page:
        return None
    before, after = old_page.raw_get("/Resources"), new_page.raw_get("/Resources")
    if before == after:
        return None
    if not isinstance(after, generic.IndirectObject) or not old.is_ref_unassignable(
        after.reference
    ):
        raise SuspiciousModification(
            f"Values for dict key /Resources differ: {before} changed to {after} "
            "(only a new object copying the old resources exactly is accepted)."
        )
    copy = new(after.reference)
    try:
        compare_dicts(_deref(before), copy)
    except SuspiciousModification as exc:
        raise SuspiciousModification(
            f"The page's /Resources were replaced by {after.reference}, which differs: {exc}"
        ) from exc
    return after.reference


# ---------------------------------------------------------------------------------------------
# the stricter form check


def _fields_by_name(resolver: HistoricalResolver) -> dict[str, generic.DictionaryObject]:
    """Terminal form fields of a revision by fully qualified name (bounded, loop-safe)."""
    out: dict[str, generic.DictionaryObject] = {}
    acroform = resolver.root.get("/AcroForm") if "/AcroForm" in resolver.root else None
    acroform = _deref(acroform)
    if not isinstance(acroform, generic.DictionaryObject) or "/Fields" not in acroform:
        return out
    fields = _deref(acroform.raw_get("/Fields"))
    if not isinstance(fields, generic.ArrayObject):
        return out
    seen: set[generic.Reference] = set()
    stack: list[tuple[str, Any, Any]] = [("", f, None) for f in fields]
    while stack and len(seen) < MAX_WALK_NODES:
        prefix, item, inherited_ft = stack.pop()
        if isinstance(item, generic.IndirectObject):
            if item.reference in seen:
                continue
            seen.add(item.reference)
        node = _deref(item)
        if not isinstance(node, generic.DictionaryObject):
            continue
        part = node.get("/T")
        name = f"{prefix}.{part}" if prefix and part is not None else (str(part or prefix))
        ft = node.get("/FT", inherited_ft)
        kids = _deref(node.get("/Kids")) if "/Kids" in node else None
        named_kids = isinstance(kids, generic.ArrayObject) and any(
            isinstance(_deref(k), generic.DictionaryObject) and "/T" in _deref(k) for k in kids
        )
        if named_kids and kids is not None:
            for kid in kids:
                stack.append((name, kid, ft))
        else:
            if ft is not None and "/FT" not in node:
                node = generic.DictionaryObject({**node, generic.NameObject("/FT"): ft})
            out[name] = node
    return out


def _text_value(field: generic.DictionaryObject) -> str:
    value = field.get("/V")
    if value is None:
        return ""
    value = _deref(value)
    if isinstance(value, generic.StreamObject):
        return value.data.decode("latin-1", "replace")
    return str(value)


def _appearance_bytes(field: generic.DictionaryObject) -> list[bytes]:
    """The normal appearance stream(s) drawn for a field and its widgets."""
    widgets = [field]
    if "/Kids" in field:
        kids = _deref(field.get("/Kids"))
        if isinstance(kids, generic.ArrayObject):
            widgets = [_deref(k) for k in kids]
    out: list[bytes] = []
    for widget in widgets:
        if not isinstance(widget, generic.DictionaryObject) or "/AP" not in widget:
            out.append(b"")
            continue
        ap = _deref(widget.get("/AP"))
        normal = _deref(ap.get("/N")) if isinstance(ap, generic.DictionaryObject) else None
        if isinstance(normal, generic.StreamObject):
            out.append(normal.data)
        elif isinstance(normal, generic.DictionaryObject):
            state = widget.get("/AS")
            chosen = _deref(normal.get(state)) if state is not None else None
            out.append(chosen.data if isinstance(chosen, generic.StreamObject) else b"")
        else:
            out.append(b"")
    return out


def check_prefilled_text_fields(
    old: HistoricalResolver, new: HistoricalResolver, changed: Iterable[str]
) -> None:
    """Raise :class:`SuspiciousModification` when a text field that showed a value at signing
    time had its value or its appearance changed in ``new``."""
    names = set(changed)
    if not names:
        return
    old_fields = _fields_by_name(old)
    new_fields = _fields_by_name(new)
    for name in sorted(names):
        before = old_fields.get(name)
        after = new_fields.get(name)
        if before is None or after is None or before.get("/FT") != "/Tx":
            continue
        shown = _text_value(before)
        if not shown.strip():
            continue  # the field was empty when signed: filling it is permitted
        if _text_value(after) != shown or _appearance_bytes(after) != _appearance_bytes(before):
            raise SuspiciousModification(
                f"Text field {name!r} already showed a value when signed and was redrawn or "
                "changed afterwards (shadow attack: replace via overlay)."
            )


class VerifierDiffPolicy(StandardDiffPolicy):
    """pyHanko's standard policy plus the adjustments described in the module docstring."""

    def apply(
        self,
        old: HistoricalResolver,
        new: HistoricalResolver,
        field_mdp_spec: FieldMDPSpec | None = None,
        doc_mdp: MDPPerm | None = None,
    ) -> DiffResult:
        result = super().apply(old, new, field_mdp_spec=field_mdp_spec, doc_mdp=doc_mdp)
        if (
            result.modification_level == ModificationLevel.ANNOTATIONS
            and doc_mdp is not None
            and doc_mdp != MDPPerm.ANNOTATE
        ):
            raise SuspiciousModification(
                f"Annotations were added, which certification level {doc_mdp.name} forbids."
            )
        check_prefilled_text_fields(old, new, result.changed_form_fields)
        return result


def build_diff_policy() -> VerifierDiffPolicy:
    """The diff policy used by :func:`signing.verify.verify`."""
    return VerifierDiffPolicy(
        global_rules=[
            _CatalogRule(),
            _NamedAppearanceRule(),
            _MarkupAnnotationRule(),
            _StructTreeRule(),
            DocInfoRule().as_qualified(ModificationLevel.LTA_UPDATES),
            XrefStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
            ObjectStreamRule().as_qualified(ModificationLevel.LTA_UPDATES),
            DSSCompareRule().as_qualified(ModificationLevel.LTA_UPDATES),
            MetadataUpdateRule().as_qualified(ModificationLevel.LTA_UPDATES),
        ],
        form_rule=FormUpdatingRule(
            field_rules=[
                _SigFieldCreationRule(),
                SigFieldModificationRule(),
                GenericFieldModificationRule(value_update_keys=VALUE_UPDATE_KEYS | {"/I"}),
            ],
        ),
    )
