// Step editor: drag a step by its ☰ handle to reorder (the "order" boxes are renumbered to
// match), and show only the rule fields of the step's completion type. Without JavaScript the
// order boxes work and every field is shown.
'use strict';
(function() {
    function container() {
        return document.querySelector('.paths-steps');
    }

    function steps(group) {
        return Array.from(group.querySelectorAll('.inline-related'))
            .filter((step) => !step.classList.contains('empty-form') && step.querySelector('input[name$="-order"]'));
    }

    function renumber(group) {
        // A blank extra form keeps its empty order, or it would count as a changed (new) step.
        const filled = steps(group).filter((step) => step.querySelector('input[name$="-key"]').value.trim());
        filled.forEach((step, index) => {
            step.querySelector('input[name$="-order"]').value = index + 1;
        });
    }

    function addHandle(step, group) {
        const heading = step.querySelector('h3');
        if (!heading || heading.querySelector('.paths-drag-handle')) {
            return;
        }
        const handle = document.createElement('span');
        handle.className = 'paths-drag-handle';
        handle.title = 'Drag to reorder';
        handle.textContent = '☰';
        heading.prepend(handle);
        handle.addEventListener('mousedown', () => { step.draggable = true; });
        step.addEventListener('dragstart', (event) => {
            step.classList.add('paths-dragging');
            event.dataTransfer.effectAllowed = 'move';
        });
        step.addEventListener('dragend', () => {
            step.classList.remove('paths-dragging');
            step.draggable = false;
            renumber(group);
        });
        step.addEventListener('dragover', (event) => {
            const dragged = group.querySelector('.paths-dragging');
            if (!dragged || dragged === step) {
                return;
            }
            event.preventDefault();
            const box = step.getBoundingClientRect();
            const after = event.clientY > box.top + box.height / 2;
            step.parentNode.insertBefore(dragged, after ? step.nextSibling : step);
        });
    }

    // Rows that belong to one completion type: the event rule, or the form's questions.
    const EVENT_FIELDS = ['event_name', 'conditions-rows', 'window_0'];

    function rowOf(step, suffix) {
        const input = step.querySelector(`[name$="-${suffix}"]`);
        return input ? input.closest('.form-row') : null;
    }

    function showRuleFields(step) {
        const completion = step.querySelector('select[name$="-completion"]');
        if (!completion) {
            return;
        }
        EVENT_FIELDS.forEach((suffix) => {
            const row = rowOf(step, suffix);
            if (row) {
                row.hidden = completion.value !== 'event';
            }
        });
        const questions = step.querySelector('textarea[name$="-questions"]');
        const fieldset = questions ? questions.closest('fieldset') : null;
        if (fieldset) {
            fieldset.hidden = completion.value !== 'form';
        }
    }

    function watchCompletion(step) {
        const completion = step.querySelector('select[name$="-completion"]');
        if (completion) {
            completion.addEventListener('change', () => showRuleFields(step));
            showRuleFields(step);
        }
    }

    function init() {
        const group = container();
        if (!group || !group.querySelector('input[name$="-order"]:not([disabled])')) {
            return;  // read-only version: nothing to reorder
        }
        steps(group).forEach((step) => {
            addHandle(step, group);
            watchCompletion(step);
        });
        document.addEventListener('formset:added', (event) => {
            const step = event.target;
            addHandle(step, group);
            watchCompletion(step);
        });
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', init);
    } else {
        init();
    }
})();
