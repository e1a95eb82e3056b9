-- DBeaver (PostgreSQL plugin, org.jkiss.dbeaver.ext.postgresql) connect + browse sequence.
-- Sources read: dbeaver/dbeaver at 2428359b (2024-10-24, version 24.2.4-SNAPSHOT) and pgjdbc/pgjdbc HEAD 3a699d57 (42.7.13+).
-- Default connection settings assumed: "show all databases" off, separate metadata connection on, no bootstrap
-- queries, no default schema, not read-only, server version >= 12 (e.g. 16).  All DBeaver statements are JDBC
-- PreparedStatements -> extended protocol (Parse/Bind/Execute), values shown substituted for $1.
-- OIDs ${oid:tpch} (namespace tpch) and ${oid:tpch.orders} (table tpch.orders) are realistic placeholders.
-- [Main ctx] pgJDBC runInitialQueries: ApplicationName defaults to DriverInfo.DRIVER_NAME and assumeMinServerVersion is unset, so it is SET after startup (server>=12; for 9.0-11 the same batch is 'SET extra_float_digits = 3;SET application_name = ...') (source: pgjdbc/pgjdbc:pgjdbc/src/main/java/org/postgresql/core/v3/ConnectionFactoryImpl.java)
SET application_name = 'PostgreSQL JDBC Driver'
;;
-- [Main ctx] DBeaver PostgreDataSource.openConnection -> pgConnection.setClientInfo("ApplicationName", DBUtils.getClientApplicationName(...)) -> pgJDBC PgConnection.setClientInfo; substituted: product title 'DBeaver 24.2.3', purpose 'Main <tollgate>' (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java + pgjdbc/pgjdbc:pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java)
SET application_name = 'DBeaver 24.2.3 - Main <tollgate>'
;;
-- [Main ctx] PostgreExecutionContext.refreshDefaults: read active schema and user (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java)
SELECT current_schema(),session_user
;;
-- [Main ctx] refreshDefaults pre-caches schemas: PostgreDatabase.SchemaCache.prepareLookupStatement, no navigator filter (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java)
-- expect: tpch
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname
;;
-- [Main ctx] refreshDefaults: read search_path (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java)
SHOW search_path
;;
-- [Metadata ctx] second physical connection (separate meta connection), pgJDBC runInitialQueries (source: pgjdbc/pgjdbc:pgjdbc/src/main/java/org/postgresql/core/v3/ConnectionFactoryImpl.java)
SET application_name = 'PostgreSQL JDBC Driver'
;;
-- [Metadata ctx] setClientInfo ApplicationName; substituted purpose 'Metadata <tollgate>' (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java + pgjdbc/pgjdbc:pgjdbc/src/main/java/org/postgresql/jdbc/PgConnection.java)
SET application_name = 'DBeaver 24.2.3 - Metadata <tollgate>'
;;
-- [Metadata ctx] refreshDefaults (schemas already cached) (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java)
SELECT current_schema(),session_user
;;
-- [Metadata ctx] refreshDefaults (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreExecutionContext.java)
SHOW search_path
;;
-- PostgreDatabase.readDatabaseInfo; prepared, $1 substituted = 'tollgate' (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java)
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname='tollgate'
;;
-- PostgreDataSource.initializeRemoteInstance preloads setting via SettingCache; prepared, $1 substituted = 'standard_conforming_strings' (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java)
select * from pg_catalog.pg_settings where name='standard_conforming_strings'
;;
-- JDBCDataSource.initialize -> JDBCSQLDialect.initDriverSettings -> loadDriverKeywords -> DatabaseMetaData.getSQLKeywords(); pgJDBC builds this (server>=9.0); uses set-returning pg_get_keywords() and a text[] literal (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.model.jdbc/src/org/jkiss/dbeaver/model/impl/jdbc/JDBCSQLDialect.java + pgjdbc/pgjdbc:pgjdbc/src/main/java/org/postgresql/jdbc/PgDatabaseMetaData.java)
select string_agg(word, ',') from pg_catalog.pg_get_keywords() where word <> ALL ('{a,abs,absolute,action,ada,add,admin,after,all,allocate,alter,always,and,any,are,array,as,asc,asensitive,assertion,assignment,asymmetric,at,atomic,attribute,attributes,authorization,avg,before,begin,bernoulli,between,bigint,binary,blob,boolean,both,breadth,by,c,call,called,cardinality,cascade,cascaded,case,cast,catalog,catalog_name,ceil,ceiling,chain,char,char_length,character,character_length,character_set_catalog,character_set_name,character_set_schema,characteristics,characters,check,checked,class_origin,clob,close,coalesce,cobol,code_units,collate,collation,collation_catalog,collation_name,collation_schema,collect,column,column_name,command_function,command_function_code,commit,committed,condition,condition_number,connect,connection_name,constraint,constraint_catalog,constraint_name,constraint_schema,constraints,constructors,contains,continue,convert,corr,corresponding,count,covar_pop,covar_samp,create,cross,cube,cume_dist,current,current_collation,current_date,current_default_transform_group,current_path,current_role,current_time,current_timestamp,current_transform_group_for_type,current_user,cursor,cursor_name,cycle,data,date,datetime_interval_code,datetime_interval_precision,day,deallocate,dec,decimal,declare,default,defaults,deferrable,deferred,defined,definer,degree,delete,dense_rank,depth,deref,derived,desc,describe,descriptor,deterministic,diagnostics,disconnect,dispatch,distinct,domain,double,drop,dynamic,dynamic_function,dynamic_function_code,each,element,else,end,end-exec,equals,escape,every,except,exception,exclude,excluding,exec,execute,exists,exp,external,extract,false,fetch,filter,final,first,float,floor,following,for,foreign,fortran,found,free,from,full,function,fusion,g,general,get,global,go,goto,grant,granted,group,grouping,having,hierarchy,hold,hour,identity,immediate,implementation,in,including,increment,indicator,initially,inner,inout,input,insensitive,insert,instance,instantiable,int,integer,intersect,intersection,interval,into,invoker,is,isolation,join,k,key,key_member,key_type,language,large,last,lateral,leading,left,length,level,like,ln,local,localtime,localtimestamp,locator,lower,m,map,match,matched,max,maxvalue,member,merge,message_length,message_octet_length,message_text,method,min,minute,minvalue,mod,modifies,module,month,more,multiset,mumps,name,names,national,natural,nchar,nclob,nesting,new,next,no,none,normalize,normalized,not,"null",nullable,nullif,nulls,number,numeric,object,octet_length,octets,of,old,on,only,open,option,options,or,order,ordering,ordinality,others,out,outer,output,over,overlaps,overlay,overriding,pad,parameter,parameter_mode,parameter_name,parameter_ordinal_position,parameter_specific_catalog,parameter_specific_name,parameter_specific_schema,partial,partition,pascal,path,percent_rank,percentile_cont,percentile_disc,placing,pli,position,power,preceding,precision,prepare,preserve,primary,prior,privileges,procedure,public,range,rank,read,reads,real,recursive,ref,references,referencing,regr_avgx,regr_avgy,regr_count,regr_intercept,regr_r2,regr_slope,regr_sxx,regr_sxy,regr_syy,relative,release,repeatable,restart,result,return,returned_cardinality,returned_length,returned_octet_length,returned_sqlstate,returns,revoke,right,role,rollback,rollup,routine,routine_catalog,routine_name,routine_schema,row,row_count,row_number,rows,savepoint,scale,schema,schema_name,scope_catalog,scope_name,scope_schema,scroll,search,second,section,security,select,self,sensitive,sequence,serializable,server_name,session,session_user,set,sets,similar,simple,size,smallint,some,source,space,specific,specific_name,specifictype,sql,sqlexception,sqlstate,sqlwarning,sqrt,start,state,statement,static,stddev_pop,stddev_samp,structure,style,subclass_origin,submultiset,substring,sum,symmetric,system,system_user,table,table_name,tablesample,temporary,then,ties,time,timestamp,timezone_hour,timezone_minute,to,top_level_count,trailing,transaction,transaction_active,transactions_committed,transactions_rolled_back,transform,transforms,translate,translation,treat,trigger,trigger_catalog,trigger_name,trigger_schema,trim,true,type,uescape,unbounded,uncommitted,under,union,unique,unknown,unnamed,unnest,update,upper,usage,user,user_defined_type_catalog,user_defined_type_code,user_defined_type_name,user_defined_type_schema,using,value,values,var_pop,var_samp,varchar,varying,view,when,whenever,where,width_bucket,window,with,within,without,work,write,year,zone}'::text[])
;;
-- PostgreDataSource.initialize: server version string (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDataSource.java)
SELECT version()
;;
-- PostgreDataSource.initialize (server>=12): PostgreUtils.isMetaObjectExists(session, "pg_enum", "*") -> getQueryForSystemColumnChecking (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/PostgreUtils.java)
SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1
;;
-- PostgreDataSource.initialize: isMetaObjectExists(session, "pg_class", "reltype") (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/PostgreUtils.java)
SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1
;;
-- PostgreDatabase.cacheDataTypes (readAllTypes=false, server>=10 so typcategory assumed) (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java)
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')
;;
-- PostgreDatabase.initEnumTypesCache -> EnumValueCache (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreDatabase.java)
SELECT * FROM pg_catalog.pg_enum
;;
-- Browse: expand schema 'tpch' -> PostgreSchema.TableCache.prepareLookupStatement (server>=10 adds partition columns); $1 = pg_namespace.oid of 'tpch', substituted ${oid:tpch} (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java)
-- expect: orders, lineitem, TPC-H orders table
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr, pg_catalog.pg_get_partkeydef(c.oid) as partition_key FROM pg_catalog.pg_class c LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass WHERE c.relnamespace=${oid:tpch} AND c.relkind not in ('i','I','c')
;;
-- Browse: expand table 'orders' -> Columns: TableCache.prepareChildrenStatement(forTable); $1 = pg_class.oid of tpch.orders, substituted ${oid:tpch.orders} (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java)
-- expect: o_orderkey, o_totalprice
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid) LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum) LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=${oid:tpch.orders} ORDER BY a.attnum
;;
-- Browse: table 'orders' -> Constraints / Foreign Keys: ConstraintCache.prepareObjectsStatement(forParent); quoted function name "substring"; $1 substituted ${oid:tpch.orders} (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java)
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy FROM pg_catalog.pg_constraint c INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass WHERE c.conrelid=${oid:tpch.orders} ORDER BY c.oid
;;
-- Browse: table 'orders' -> Indexes: IndexCache.prepareObjectsStatement(forTable); $1 substituted ${oid:tpch.orders} (source: dbeaver/dbeaver:plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model/PostgreSchema.java)
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans FROM pg_catalog.pg_index i INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid WHERE i.indrelid=${oid:tpch.orders} ORDER BY c.relname
;;
