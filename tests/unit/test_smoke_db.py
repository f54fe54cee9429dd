from sqlalchemy import select

from crm.access import Actor
from crm.audit import data_version, record
from crm.models import PipelineStage, Role
from tests.factories import make_customer, make_user


def test_migrated_database_has_reference_data_and_versions(session) -> None:
    stages = session.scalars(select(PipelineStage.key).order_by(PipelineStage.position)).all()
    assert stages == ["prospecting", "engaging", "won", "lost"]
    rep = make_user(session, "rep1", role=Role.REP, team="north")
    customer = make_customer(session, "Acme", owner=rep)
    assert customer.code == f"C{customer.id:06d}"
    record(session, actor=Actor.from_user(rep), action="create", entity="customer", entity_id=customer.id)
    record(session, actor=None, action="create", entity="customer", entity_id=customer.id)
    session.commit()
    assert data_version(session) == 2
